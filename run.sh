#!/usr/bin/env bash
# run.sh — set up, build and run ipc on Debian 12 (as root, or with sudo for the package step).
#
#   ./run.sh          install what is missing, build, and run the main job: a quick benchmark run
#                     (about a minute) that prints ipc's figures beside the alternatives'
#   ./run.sh bench    the full benchmark run: JSON, table and chart in benchmarks/results/<date>/,
#                     and the latest table and chart in benchmarks/README.md
#   ./run.sh test     install what is missing, build, and run the whole test suite: the tests,
#                     the examples, the same under ASan+UBSan and under TSan, and a separate project that uses
#                     ipc each way CMake projects do (installed, build tree, add_subdirectory,
#                     FetchContent)
#   ./run.sh mutants  plants each bug in tests/mutants/ in a scratch copy and checks that the tests
#                     catch it (not in CI: it builds once per mutant)
#   ./run.sh fuzz     builds the libFuzzer targets (tests/fuzz) with Clang in build-fuzz and runs each
#                     for FUZZ_SECONDS (30) over a copy of its seed corpus; ./run.sh test runs it too
#   ./run.sh soak     producers and consumers on one Queue while processes are killed and frozen at
#                     random, for SOAK_SECONDS (300): counts sent, delivered, lost, duplicated, torn,
#                     and what was left behind; fails on any loss the kills do not explain
set -euo pipefail
cd "$(dirname "$0")"

jobs=$(nproc)
packages=(g++ cmake make patch libboost-dev libssl-dev catch2 libcereal-dev libbenchmark-dev nlohmann-json3-dev gnuplot-nox
    openmpi-bin libopenmpi-dev python3-mpi4py)
# Clang and libFuzzer's runtime, for the fuzz targets only (./run.sh fuzz, and test, which runs them).
fuzz_packages=(clang libclang-rt-14-dev)

# install_missing [more packages...]: the packages above, and those given.
install_missing() {
    local missing=()
    for package in "${packages[@]}" "$@"; do
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

# A separate project, tests/consumer, takes ipc in each way a CMake project can: the installed
# package, this build tree, add_subdirectory and FetchContent of this checkout; each program must run.
check_consumers() {
    local prefix scratch
    prefix=$(mktemp -d)
    scratch=$(mktemp -d)
    trap 'rm -rf "$prefix" "$scratch"' RETURN
    cmake --install build --prefix "$prefix" >/dev/null
    consumer() {
        local way=$1
        shift
        echo "== a separate project using ipc: $way"
        cmake -S tests/consumer -B "$scratch/$way" "$@" >/dev/null
        cmake --build "$scratch/$way" -j "$jobs" >/dev/null
        "$scratch/$way/consumer"
        # ipc::mpi, when this ipc was built with MPI (Open MPI refuses root unless told).
        if [[ -x $scratch/$way/mpi_consumer ]]; then
            OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$scratch/$way/mpi_consumer"
        fi
        passed=$((passed + 1))
    }
    consumer installed -DIPC_CONSUMER_USES=find_package -DCMAKE_PREFIX_PATH="$prefix"
    consumer build-tree -DIPC_CONSUMER_USES=find_package -Dipc_DIR="$PWD/build"
    # Built from source inside the consumer: Debug, which compiles fastest.
    consumer add_subdirectory -DIPC_CONSUMER_USES=add_subdirectory -DIPC_SOURCE_DIR="$PWD" -DCMAKE_BUILD_TYPE=Debug
    consumer FetchContent -DIPC_CONSUMER_USES=FetchContent -DIPC_SOURCE_DIR="$PWD" -DCMAKE_BUILD_TYPE=Debug
}

# run_benchmarks DIR MIN_TIME PASSES: every benchmark program, then Python's multiprocessing peers,
# PASSES times over, each pass writing its JSON into DIR (the console output into build/bench-logs,
# which is not kept with the results); one line per case shows the progress. The
# report takes each case's median over the passes: repeated minutes apart rather than back to back,
# a case is not spoiled by one burst of load on the machine.
# With BUSY=busy, each pass also runs the message and shared-state cases while every CPU is kept
# busy (run_busy_pass).
run_benchmarks() {
    local dir=$1 min_time=$2 passes=$3 busy=${4:-} pass program
    mkdir -p "$dir"
    for ((pass = 1; pass <= passes; pass++)); do
        for program in bench_messages bench_shared_state bench_pool bench_process_start; do
            [[ -x build/benchmarks/$program ]] || continue
            echo "== pass $pass/$passes: $program (each case at least ${min_time}s)"
            run_program "$program" "$dir/$program.$pass.json" "$min_time"
        done
        run_mpi_pass "$dir" "$min_time" "$pass" "$passes"
        if [[ $busy == busy ]]; then
            run_busy_pass "$dir" "$min_time" "$pass" "$passes"
        fi
        if command -v python3 >/dev/null; then
            echo "== pass $pass/$passes: Python's multiprocessing ($(python3 --version 2>&1))"
            python3 benchmarks/python_peers.py --min-time "$min_time" --out "$dir/python.$pass.json" 2>&1 |
                sed -u 's/^/   /'
        else
            echo "== python3 not found: the table says so where Python's figures would be"
        fi
    done
}

# run_program PROGRAM JSON MIN_TIME [options]: one benchmark program (started by $LAUNCHER when set,
# mpirun for instance); its full console output goes to a log in build/bench-logs, the screen gets
# each case's name and rate.
run_program() {
    local program=$1 json=$2 min_time=$3 logs=build/bench-logs launcher
    shift 3
    read -r -a launcher <<<"${LAUNCHER:-}"
    mkdir -p "$logs"
    "${launcher[@]}" build/benchmarks/$program --benchmark_min_time="$min_time" --benchmark_color=false \
        --benchmark_out="$json" --benchmark_out_format=json "$@" 2>&1 |
        tee "$logs/$(basename "$json" .json).log" |
        awk '/ERROR OCCURRED/ { print "   " $0; next }
             !/^[a-z][a-zA-Z0-9._]*[\/ ]/ { next }
             { name = $1; sub("/real_time", "", name); rate = ""
               for (i = 2; i <= NF; i++) if ($i ~ /^items_per_second=/) { rate = $i; sub("items_per_second=", "", rate) }
               printf "   %-44s %s\n", name, rate; fflush() }'
}

# run_mpi_pass DIR MIN_TIME PASS PASSES: ipc::mpi::Pool and mpi4py's MPIPoolExecutor (Debian's
# python3-mpi4py, hence /usr/bin/python3) on three ranks of mpirun, when both were built/installed.
run_mpi_pass() {
    local dir=$1 min_time=$2 pass=$3 passes=$4
    [[ -x build/benchmarks/bench_mpi_pool ]] && command -v mpirun >/dev/null || return 0
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PMIX_MCA_gds=hash
    echo "== pass $pass/$passes: bench_mpi_pool on 3 MPI ranks (each case at least ${min_time}s)"
    LAUNCHER="mpirun --oversubscribe -np 3" run_program bench_mpi_pool "$dir/bench_mpi_pool.$pass.json" "$min_time"
    if /usr/bin/python3 -c "import mpi4py" 2>/dev/null; then
        echo "== pass $pass/$passes: mpi4py's MPIPoolExecutor on 3 MPI ranks"
        mpirun --oversubscribe -np 3 /usr/bin/python3 -m mpi4py.futures benchmarks/mpi4py_peer.py \
            --min-time "$min_time" --out "$dir/mpi4py.$pass.json" 2>&1 | sed -u 's/^/   /'
    fi
}

# run_busy_pass DIR MIN_TIME PASS PASSES: the message and shared-state cases again while one
# busy-looping process per CPU runs beside them (unrelated to the benchmark, at the same priority);
# their JSON says load=busy, which bench_report shows beside the idle figures.
run_busy_pass() {
    local dir=$1 min_time=$2 pass=$3 passes=$4 program loaders=() cpu
    for ((cpu = 0; cpu < $(nproc); cpu++)); do
        bash -c 'while :; do :; done' &
        loaders+=($!)
    done
    trap 'kill "${loaders[@]}" 2>/dev/null' EXIT
    for program in bench_messages bench_shared_state; do
        [[ -x build/benchmarks/$program ]] || continue
        echo "== pass $pass/$passes: $program with every CPU busy (${#loaders[@]} busy processes)"
        run_program "$program" "$dir/busy.$program.$pass.json" "$min_time" --benchmark_context=load=busy
    done
    kill "${loaders[@]}" 2>/dev/null
    wait "${loaders[@]}" 2>/dev/null || true
    trap - EXIT
}

# report DIR [bench_report options]: the table of the run in DIR.
report() {
    local dir=$1
    shift
    local options=()
    command -v python3 >/dev/null || options+=(--no-python)
    build/benchmarks/bench_report "${options[@]}" "$@" "$dir"/*.json
}

# The machine a run came from, as Markdown.
describe_machine() {
    local compiler
    compiler=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' build/CMakeCache.txt)
    echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p') at $(awk '/^cpu MHz/ { printf "%.0f", $4; exit }' /proc/cpuinfo) MHz, $(nproc) cores"
    echo "- kernel: $(uname -sr); $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "- compiler: $("${compiler:-c++}" --version | head -n 1), CMake build type RelWithDebInfo (-O2)"
    echo "- Google Benchmark $(dpkg-query -W -f='${Version}' libbenchmark-dev 2>/dev/null || echo '?'); $(command -v python3 >/dev/null && python3 --version 2>&1 || echo 'python3 not found')"
    echo "- load average at the start: $(cut -d ' ' -f 1-3 /proc/loadavg)"
}

# Builds the fuzz targets (Clang, ASan+UBSan, the library and the targets only) and runs each for
# FUZZ_SECONDS over a scratch copy of its seed corpus, so the committed corpus never grows; a crash, a
# leak, a sanitizer report, a 10-second input or 2 GB of memory fails the target, whose input then
# waits in build-fuzz/artifacts/ (reproduce: build-fuzz/tests/fuzz/<target> <file>). One check per target.
run_fuzzers() {
    local seconds=${FUZZ_SECONDS:-30} status=0 target
    install_missing "${fuzz_packages[@]}"
    build build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DIPC_FUZZERS=ON -DIPC_BUILD_TESTS=OFF -DIPC_BUILD_EXAMPLES=OFF \
        -DIPC_BUILD_BENCHMARKS=OFF -DIPC_INSTALL=OFF -DIPC_MPI=OFF
    rm -rf build-fuzz/corpus build-fuzz/artifacts
    mkdir -p build-fuzz/corpus build-fuzz/artifacts
    for target in fuzz_codec fuzz_segment_header fuzz_ring fuzz_handshake fuzz_manager_request; do
        echo "== fuzzing $target for ${seconds}s"
        cp -r "tests/fuzz/corpus/$target" "build-fuzz/corpus/$target"
        if "build-fuzz/tests/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="build-fuzz/artifacts/$target-" "build-fuzz/corpus/$target" >"build-fuzz/$target.log" 2>&1; then
            grep -E '^Done [0-9]+ runs' "build-fuzz/$target.log" | sed 's/^/   /' || true
            passed=$((passed + 1))
        else
            tail -n 60 "build-fuzz/$target.log"
            echo "== $target FAILED: its input is in build-fuzz/artifacts/, its log in build-fuzz/$target.log"
            failed=$((failed + 1))
            status=1
        fi
    done
    return "$status"
}

# Each tests/mutants/*.patch plants one bug that a guarantee rules out (its first lines say which,
# and which tests must catch it). Each is applied in turn to a scratch copy of the tracked sources,
# built, and those tests run: a mutant the tests pass is MISSED, and the run fails.
run_mutants() {
    local work=build-mutants missed=0 caught=0
    rm -rf "$work/src"
    mkdir -p "$work/src"
    git ls-files -z | tar --null -T - -c | tar -x -C "$work/src"
    cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIPC_BUILD_BENCHMARKS=OFF \
        -DIPC_BUILD_EXAMPLES=OFF >/dev/null
    cmake --build "$work/build" -j "$jobs" --target ipc_tests >/dev/null
    for patch in tests/mutants/*.patch; do
        local name tests ctest_regex targets verdict
        name=$(basename "$patch" .patch)
        tests=$(sed -n 's/^# tests: //p' "$patch" | head -n 1)
        # A guarantee that only a ctest entry checks (an MPI job, say) names it, and its targets.
        ctest_regex=$(sed -n 's/^# ctest: //p' "$patch" | head -n 1)
        read -r -a targets <<<"$(sed -n 's/^# targets: //p' "$patch" | head -n 1)"
        ((${#targets[@]})) || targets=(ipc_tests)
        patch -s -p1 -d "$work/src" <"$patch"
        if ! cmake --build "$work/build" -j "$jobs" --target "${targets[@]}" >"$work/build.log" 2>&1; then
            verdict="does not build (fix the patch)"
            missed=$((missed + 1))
        elif if [[ -n $ctest_regex ]]; then
            ctest --test-dir "$work/build" -R "$ctest_regex" --timeout 150 >"$work/$name.log" 2>&1
        else
            timeout 150 "$work/build/tests/ipc_tests" "$tests" >"$work/$name.log" 2>&1
        fi; then
            verdict="MISSED: the tests pass"
            missed=$((missed + 1))
        else
            verdict="caught"
            caught=$((caught + 1))
        fi
        pkill -KILL -f "$work/build/tests/ipc_tests" || true  # what a hung run (caught by the timeout) left
        patch -s -R -p1 -d "$work/src" <"$patch"
        printf '%-32s %s\n' "$name" "$verdict"
    done
    echo "mutants: $caught caught, $missed missed"
    ((missed == 0))
}

install_missing
case "${1:-main}" in
main)
    build build
    dir=build/bench-quick
    rm -rf "$dir"
    echo "== a quick benchmark run (./run.sh bench for the full one, with a chart)"
    run_benchmarks "$dir" 0.2 1
    echo
    report "$dir"
    ;;
bench)
    build build
    started=$(date '+%Y-%m-%d %H:%M')
    dir=benchmarks/results/$(date -d "$started" +%Y-%m-%d-%H%M)
    mkdir -p "$dir"
    describe_machine >"$dir/machine.md"
    run_benchmarks "$dir" 0.3 3 busy
    report "$dir" --chart-data "$dir/chart.dat" | tee "$dir/table.md"
    gnuplot -c benchmarks/chart.gp "$dir/chart.dat" "$dir/chart.png" \
        "ipc and the alternatives, two processes ($started, $(nproc) cores)"
    # The latest run goes into benchmarks/README.md, between its two markers.
    {
        echo "Run of $started (\`${dir#benchmarks/}/\`), with \`./run.sh bench\`, on:"
        echo
        cat "$dir/machine.md"
        echo
        echo "![throughput by message size](${dir#benchmarks/}/chart.png)"
        echo
        cat "$dir/table.md"
    } >"$dir/latest.md"
    awk -v latest="$dir/latest.md" '
        /<!-- latest run: begin -->/ { print; while ((getline line < latest) > 0) print line; skipping = 1; next }
        /<!-- latest run: end -->/ { skipping = 0 }
        !skipping' benchmarks/README.md >benchmarks/README.md.new
    mv benchmarks/README.md.new benchmarks/README.md
    echo "== results in $dir; benchmarks/README.md shows them"
    ;;
mutants)
    run_mutants
    ;;
fuzz)
    status=0
    run_fuzzers || status=$?
    echo "fuzz targets: $passed passed, $failed failed"
    exit "$status"
    ;;
soak)
    build build
    echo "== soak: ${SOAK_SECONDS:-300} s of producers and consumers killed and frozen at random"
    build/tests/ipc_soak "${SOAK_SECONDS:-300}"
    ;;
test)
    build build
    run_tests build
    build build-sanitize -DIPC_SANITIZE=ON -DIPC_BUILD_BENCHMARKS=OFF
    run_tests build-sanitize
    build build-tsan -DIPC_SANITIZE_THREAD=ON -DIPC_BUILD_BENCHMARKS=OFF
    TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp halt_on_error=1" run_tests build-tsan
    check_consumers
    run_fuzzers
    echo "tests: $passed passed, $failed failed"
    ;;
*)
    echo "usage: $0 [main|bench|test|mutants|soak|fuzz]" >&2
    exit 2
    ;;
esac
