// benchmarks/shared_state.cpp — shared state between two processes: a counter updated under the
// Value's lock vs with atomic fetch_add, and the round trip of a Semaphore hand-off (ping-pong).
#include <mutex>

#include <ipc/ipc.hpp>

#include "peer.hpp"

namespace bench {
namespace {

void add_under_lock(ipc::Value<long> counter) {
    auto lock = counter.get_lock();
    std::lock_guard guard(lock);
    counter.get_obj() += 1;
}

void add_atomically(ipc::RawValue<long> counter) { counter.fetch_add(1); }

/// Both processes add, starting together at the gate; the figure is updates per second of the pair.
template <class Counter, void (*add_one)(Counter)>
void contended_counter(benchmark::State& state) {
    Counter counter;
    ipc::Event gate;
    Peers peers;
    peers.start(
        [](Counter counter, ipc::Event gate, std::int64_t times, int done_fd) {
            gate.wait();
            for (std::int64_t i = 0; i < times; ++i) add_one(counter);
            done(done_fd);
        },
        counter, gate, state.max_iterations, peers.done_fd());
    gate.set();
    send_loop(state, peers, [&] { add_one(counter); });
    if (counter.get_obj() != 2 * state.iterations()) state.SkipWithError("updates were lost");
    state.SetItemsProcessed(2 * state.iterations());
}

void pong(ipc::Semaphore ping, ipc::Semaphore reply, std::int64_t times) {
    for (std::int64_t i = 0; i < times; ++i) {
        ping.acquire();
        reply.release();
    }
}

void semaphore_round_trip(benchmark::State& state) {
    ipc::Semaphore ping(0), reply(0);
    Peers peers;
    peers.start(pong, ping, reply, state.max_iterations);
    Laps laps(state.max_iterations);
    laps.lap();
    for (auto _ : state) {
        ping.release();
        reply.acquire();
        laps.lap();
    }
    laps.report(state);
}

const bool registered = [] {
    add("ipc.Value.lock", contended_counter<ipc::Value<long>, add_under_lock>);
    add("ipc.Value.atomic", contended_counter<ipc::RawValue<long>, add_atomically>);
    add("ipc.Semaphore.round_trip", semaphore_round_trip)->Unit(benchmark::kMicrosecond);
    return true;
}();

}  // namespace
}  // namespace bench
