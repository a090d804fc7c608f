// The spin before a sleep (sys/spin.hpp): on a machine with more runnable threads than CPUs, a
// waiter whose spins on a word keep missing sleeps at once and makes a long spin every sixteenth
// wait; with a CPU to spare, or once a spin finds what it waits for, it spins as before.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "sys/spin.hpp"

using namespace std::chrono_literals;
using ipc::detail::SpinRecord;

namespace {

constexpr std::chrono::nanoseconds budget = 20us;
const auto busy = [] { return true; };
const auto idle = [] { return false; };

}  // namespace

TEST_CASE("on a busy machine a waiter whose spins keep missing sleeps at once and probes every sixteenth wait", "[spin]") {
    SpinRecord record;
    for (int i = 0; i < SpinRecord::misses_before_sleeping_at_once; ++i) {
        CHECK(record.spin_for(budget, busy) == budget);
        record.spun(false);
    }
    for (int round = 0; round < 2; ++round) {
        for (int i = 1; i < SpinRecord::probe_every; ++i) CHECK(record.spin_for(budget, busy) == 0ns);
        CHECK(record.spin_for(budget, busy) == SpinRecord::probe_budget);
        record.spun(false);
    }
    // A probe that finds what it waits for makes the next waits spin again.
    for (int i = 1; i < SpinRecord::probe_every; ++i) CHECK(record.spin_for(budget, busy) == 0ns);
    CHECK(record.spin_for(budget, busy) == SpinRecord::probe_budget);
    record.spun(true);
    CHECK(record.spin_for(budget, busy) == budget);
}

TEST_CASE("with a CPU to spare a waiter spins however often its spins missed", "[spin]") {
    SpinRecord record;
    for (int i = 0; i < 4 * SpinRecord::probe_every; ++i) {
        CHECK(record.spin_for(budget, idle) == budget);
        record.spun(false);
    }
}

TEST_CASE("a probe is no longer than a short timeout allows", "[spin]") {
    SpinRecord record;
    for (int i = 0; i < SpinRecord::misses_before_sleeping_at_once; ++i) record.spun(false);
    for (int i = 1; i < SpinRecord::probe_every; ++i) CHECK(record.spin_for(3us, busy) == 0ns);
    CHECK(record.spin_for(3us, busy) == 3us);
}

TEST_CASE("spin_until only looks when it has no time and keeps records apart by word", "[spin]") {
    alignas(64) static std::atomic<std::uint32_t> missed{0};
    alignas(64) static std::atomic<std::uint32_t> other{0};
    REQUIRE(&ipc::detail::spin_record_for(&missed) != &ipc::detail::spin_record_for(&other));
    int looks = 0;
    CHECK_FALSE(ipc::detail::spin_until(&missed, [&] { return ++looks < 0; }, 0ns));
    CHECK(looks == 1);
    CHECK(ipc::detail::spin_record_for(&missed).misses == 0);
    for (int i = 0; i < SpinRecord::misses_before_sleeping_at_once; ++i)
        CHECK_FALSE(ipc::detail::spin_until(&missed, [] { return false; }, 1us));
    CHECK(ipc::detail::spin_record_for(&missed).misses == SpinRecord::misses_before_sleeping_at_once);
    CHECK(ipc::detail::spin_record_for(&other).misses == 0);
    CHECK(ipc::detail::spin_until(&missed, [&] { return true; }, 1us));  // spinning or not, it looks
}

TEST_CASE("the machine counts as oversubscribed while more threads run than it has CPUs", "[spin]") {
    std::atomic<bool> stop{false};
    std::atomic<unsigned> running{0};
    std::vector<std::jthread> hogs;
    const auto cpus = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < 2 * cpus + 1; ++i)
        hogs.emplace_back([&] {
            running.fetch_add(1);
            while (!stop.load(std::memory_order_relaxed)) ipc::detail::cpu_relax();
        });
    while (running.load() < hogs.size()) ipc::detail::cpu_relax();
    const auto until = std::chrono::steady_clock::now() + 10s;
    bool seen = false;
    while (!seen && std::chrono::steady_clock::now() < until) seen = ipc::detail::cpus_oversubscribed();
    stop = true;
    CHECK(seen);
}
