// benchmarks/shared_state.cpp — shared state between two processes: a counter updated under the
// Value's lock vs with atomic fetch_add, each beside its like in plain shared memory (a
// process-shared pthread mutex, a std::atomic), the round trip of a Semaphore hand-off, and a
// Manager's dict and list used by both processes at once.
#include <pthread.h>
#include <sys/mman.h>

#include <atomic>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <ipc/ipc.hpp>

#include "peer.hpp"

namespace bench {
namespace {

void add_under_lock(ipc::Value<long> counter) {
    std::lock_guard guard(counter.get_lock());
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

/// What the peers of ipc's counters share: an anonymous shared mapping that forked children inherit.
struct PlainCounters {
    pthread_mutex_t mutex;
    long under_mutex = 0;
    std::atomic<long> atomic{0};
};

class SharedMapping {
public:
    SharedMapping() {
        void* at = ::mmap(nullptr, sizeof(PlainCounters), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (at == MAP_FAILED) fail("mmap");
        counters_ = ::new (at) PlainCounters;
        pthread_mutexattr_t attributes;
        ::pthread_mutexattr_init(&attributes);
        ::pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
        ::pthread_mutex_init(&counters_->mutex, &attributes);
        ::pthread_mutexattr_destroy(&attributes);
    }
    SharedMapping(const SharedMapping&) = delete;
    SharedMapping& operator=(const SharedMapping&) = delete;
    ~SharedMapping() {
        ::pthread_mutex_destroy(&counters_->mutex);
        ::munmap(counters_, sizeof(PlainCounters));
    }
    [[nodiscard]] PlainCounters* get() const noexcept { return counters_; }

private:
    PlainCounters* counters_;
};

void add_under_mutex(PlainCounters* counters) {
    ::pthread_mutex_lock(&counters->mutex);
    counters->under_mutex += 1;
    ::pthread_mutex_unlock(&counters->mutex);
}

void add_to_atomic(PlainCounters* counters) { counters->atomic.fetch_add(1); }

/// The peer of contended_counter: the same two processes adding, on plain shared memory.
template <void (*add_one)(PlainCounters*)>
void contended_plain_counter(benchmark::State& state) {
    SharedMapping mapping;
    PlainCounters* counters = mapping.get();
    ipc::Event gate;
    Peers peers;
    peers.start(
        [counters](ipc::Event gate, std::int64_t times, int done_fd) {
            gate.wait();
            for (std::int64_t i = 0; i < times; ++i) add_one(counters);
            done(done_fd);
        },
        gate, state.max_iterations, peers.done_fd());
    gate.set();
    send_loop(state, peers, [&] { add_one(counters); });
    if (counters->under_mutex + counters->atomic.load() != 2 * state.iterations()) state.SkipWithError("updates were lost");
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

/// Keys of one process's dict calls: 100 of its own, made before the clock runs.
std::vector<std::string> manager_keys(char process) {
    std::vector<std::string> keys;
    for (int i = 0; i < 100; ++i) keys.push_back(process + std::to_string(i));
    return keys;
}

void set_then_get(const ipc::DictProxy<std::string, long>& dict, const std::string& key, long value) {
    dict.set(key, value);
    if (dict.at(key) != value) throw std::runtime_error("a dict get returned another value than was set");
}

/// Both processes set a key of a managed dict and get it back, starting together at the gate; the
/// figure is calls (a set or a get) per second of the pair, as Python's peer counts them.
void manager_dict_set_get(benchmark::State& state) {
    ipc::Manager manager(ipc::ManagerOptions{.start_method = ipc::StartMethod::fork});
    auto dict = manager.dict<std::string, long>();
    ipc::Event gate;
    Peers peers;
    peers.start(
        [](ipc::DictProxy<std::string, long> dict, ipc::Event gate, std::int64_t times, int done_fd) {
            const auto keys = manager_keys('b');
            gate.wait();
            for (std::int64_t i = 0; i < times; ++i) set_then_get(dict, keys[static_cast<std::size_t>(i % 100)], i);
            done(done_fd);
        },
        dict, gate, state.max_iterations, peers.done_fd());
    const auto keys = manager_keys('a');
    std::int64_t i = 0;
    gate.set();
    send_loop(state, peers, [&] {
        set_then_get(dict, keys[static_cast<std::size_t>(i % 100)], i);
        ++i;
    });
    state.SetItemsProcessed(4 * state.iterations());
}

/// Both processes append to one managed list; the figure is appends per second of the pair.
void manager_list_append(benchmark::State& state) {
    // Room for every item of the longest run (a 32-byte block each, and the table's 8 bytes).
    ipc::Manager manager(ipc::ManagerOptions{.heap_size = std::size_t{1} << 30, .start_method = ipc::StartMethod::fork});
    auto list = manager.list<long>();
    ipc::Event gate;
    Peers peers;
    peers.start(
        [](ipc::ListProxy<long> list, ipc::Event gate, std::int64_t times, int done_fd) {
            gate.wait();
            for (std::int64_t i = 0; i < times; ++i) list.append(i);
            done(done_fd);
        },
        list, gate, state.max_iterations, peers.done_fd());
    long i = 0;
    gate.set();
    send_loop(state, peers, [&] { list.append(i++); });
    if (list.size() != static_cast<std::size_t>(2 * state.iterations())) state.SkipWithError("appends were lost");
    state.SetItemsProcessed(2 * state.iterations());
}

/// What a BaseManager serves in the benchmark: one counter both processes add to.
class Counter {
public:
    long add(long amount) { return value_ += amount; }
    [[nodiscard]] long value() const { return value_; }

private:
    long value_ = 0;
};

/// Both processes call a registered object's method, which runs in the manager process (a round
/// trip each); the figure is calls per second of the pair, as Python's peer counts them.
void base_manager_call(benchmark::State& state) {
    ipc::BaseManager manager(ipc::BaseManagerOptions{.start_method = ipc::StartMethod::fork});
    manager.register_type<Counter>("Counter").method<&Counter::add>("add").method<&Counter::value>("value");
    manager.start();
    auto counter = manager.create<Counter>("Counter");
    ipc::Event gate;
    Peers peers;
    peers.start(
        [](ipc::Proxy<Counter> counter, ipc::Event gate, std::int64_t times, int done_fd) {
            gate.wait();
            for (std::int64_t i = 0; i < times; ++i) counter.call<&Counter::add>(1);
            done(done_fd);
        },
        counter, gate, state.max_iterations, peers.done_fd());
    gate.set();
    send_loop(state, peers, [&] { counter.call<&Counter::add>(1); });
    if (counter.call<&Counter::value>() != 2 * static_cast<long>(state.iterations())) state.SkipWithError("calls were lost");
    state.SetItemsProcessed(2 * state.iterations());
}

const bool registered = [] {
    add("ipc.Value.lock", contended_counter<ipc::Value<long>, add_under_lock>);
    add("ipc.Value.atomic", contended_counter<ipc::RawValue<long>, add_atomically>);
    add("posix.mutex.counter", contended_plain_counter<add_under_mutex>);
    add("std.atomic.fetch_add", contended_plain_counter<add_to_atomic>);
    add("ipc.Semaphore.round_trip", semaphore_round_trip)->Unit(benchmark::kMicrosecond);
    add("ipc.Manager.dict.set_get", manager_dict_set_get);
    add("ipc.Manager.list.append", manager_list_append);
    add("ipc.BaseManager.call", base_manager_call);
    return true;
}();

}  // namespace
}  // namespace bench
