#!/usr/bin/env bash
# run.sh — set up, build and run ipc on Debian 12 (as root, or with sudo for the package step).
#
#   ./run.sh          install what is missing, build, and run the main job (an example for now)
#   ./run.sh test     install what is missing, build, and run the whole test suite: the tests,
#                     the examples, the same under ASan+UBSan, and a separate project that links
#                     the installed package
set -euo pipefail
cd "$(dirname "$0")"

jobs=$(nproc)
packages=(g++ cmake make libboost-dev libssl-dev catch2 libcereal-dev libbenchmark-dev)

install_missing() {
    local missing=()
    for package in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
    done
    if ((${#missing[@]})); then
        echo "== installing ${missing[*]}"
        local sudo=()
        ((EUID == 0)) || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# build DIR [cmake options...]
build() {
    local dir=$1
    shift
    echo "== building in $dir"
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    # Hide progress lines only; with pipefail a failed build still stops the script.
    cmake --build "$dir" -j "$jobs" 2>&1 | { grep -Ev '^\[ *[0-9]+%\]' || true; }
}

passed=0
failed=0
run_tests() {
    local dir=$1 log
    log=$(mktemp)
    echo "== testing $dir"
    local status=0
    ctest --test-dir "$dir" -j "$jobs" --output-on-failure --timeout 300 2>&1 | tee "$log" || status=$?
    # "97% tests passed, 1 tests failed out of 30"
    local summary total bad
    summary=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1 || true)
    rm -f "$log"
    total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$summary")
    bad=$(sed -E 's/.*, ([0-9]+) tests failed.*/\1/' <<<"$summary")
    passed=$((passed + ${total:-0} - ${bad:-0}))
    failed=$((failed + ${bad:-0}))
    return "$status"
}

check_installed_package() {
    local prefix consumer
    prefix=$(mktemp -d)
    consumer=$(mktemp -d)
    trap 'rm -rf "$prefix" "$consumer"' RETURN
    echo "== installing into $prefix and building a separate consumer project"
    cmake --install build --prefix "$prefix" >/dev/null
    cmake -S tests/consumer -B "$consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    cmake --build "$consumer" -j "$jobs" >/dev/null
    "$consumer/consumer"
}

install_missing
case "${1:-main}" in
main)
    build build
    ./build/examples/process_pids fork
    ./build/examples/process_pids spawn
    ;;
test)
    build build
    run_tests build
    build build-sanitize -DIPC_SANITIZE=ON -DIPC_BUILD_BENCHMARKS=OFF
    run_tests build-sanitize
    check_installed_package
    echo "tests: $passed passed, $failed failed"
    ;;
*)
    echo "usage: $0 [main|test]" >&2
    exit 2
    ;;
esac
