// benchmarks/shared_state.cpp — shared state between two processes: a counter updated under the
// Value's lock vs with atomic fetch_add, and the round trip of a Semaphore hand-off (ping-pong).
#include <benchmark/benchmark.h>

#include <mutex>

#include <ipc/ipc.hpp>

namespace {

void add_under_lock(ipc::Value<long> counter, long times) {
    auto lock = counter.get_lock();
    for (long i = 0; i < times; ++i) {
        std::lock_guard guard(lock);
        counter.get_obj() += 1;
    }
}

void add_atomically(ipc::RawValue<long> counter, long times) {
    for (long i = 0; i < times; ++i) counter.fetch_add(1);
}

void pong(ipc::Semaphore ping, ipc::Semaphore reply, long times) {
    for (long i = 0; i < times; ++i) {
        ping.acquire();
        reply.release();
    }
}

/// Both processes add `iterations` each; the figure is updates per second of the pair.
template <class Counter, class Target>
void contended_counter(benchmark::State& state, Target target) {
    Counter counter;
    const auto times = static_cast<long>(state.max_iterations);
    ipc::Process other(target, counter, times);
    other.start();
    for (auto _ : state) target(counter, 1);
    other.join();
    state.SetItemsProcessed(2 * state.iterations());
}

void value_under_lock(benchmark::State& state) { contended_counter<ipc::Value<long>>(state, add_under_lock); }
void value_atomic_fetch_add(benchmark::State& state) { contended_counter<ipc::RawValue<long>>(state, add_atomically); }

void semaphore_round_trip(benchmark::State& state) {
    ipc::Semaphore ping(0), reply(0);
    ipc::Process other(pong, ping, reply, static_cast<long>(state.max_iterations));
    other.start();
    for (auto _ : state) {
        ping.release();
        reply.acquire();
    }
    other.join();
    state.SetItemsProcessed(state.iterations());
}

BENCHMARK(value_under_lock)->UseRealTime()->Iterations(2'000'000);
BENCHMARK(value_atomic_fetch_add)->UseRealTime()->Iterations(2'000'000);
BENCHMARK(semaphore_round_trip)->UseRealTime()->Unit(benchmark::kMicrosecond)->Iterations(200'000);

}  // namespace
