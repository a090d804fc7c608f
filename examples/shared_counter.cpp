// examples/shared_counter.cpp — why a shared counter needs a lock: N processes each add 1 many
// times. `counter = counter + 1` is a read and a write; two processes that read the same value
// both write value+1, and one increment is lost. Holding the lock around the pair makes it exact.
// Python:  v = RawValue('i', 0); v.value += 1                      # loses updates
//          v = Value('i', 0);  with v.get_lock(): v.value += 1     # exact
//
//   usage: shared_counter [fork|spawn]
#include <chrono>
#include <iostream>
#include <mutex>
#include <vector>

#include <ipc/ipc.hpp>

constexpr int workers = 4, increments = 200'000;

// RawValue has no lock. value() and set() are each atomic, but the pair is not: that is the race.
void add_without_lock(ipc::RawValue<int> counter, ipc::Event go) {
    if (!go.wait(std::chrono::seconds(10))) return;  // the parent never said go
    for (int i = 0; i < increments; ++i) counter.set(counter.value() + 1);
}

// Value's get_lock() is the RLock its own value() and set() take, so holding it across both turns
// the read-modify-write into one step (Python's `with v.get_lock(): v.value += 1`).
void add_with_lock(ipc::Value<int> counter, ipc::Event go) {
    if (!go.wait(std::chrono::seconds(10))) return;  // the parent never said go
    for (int i = 0; i < increments; ++i) {
        std::lock_guard guard(counter.get_lock());
        counter = counter.value() + 1;
    }
}

// Starts the workers, then lets them all go at once: started one by one, an early worker could
// finish before the next began, and nothing would overlap.
template <class Counter>
void run(ipc::StartMethod method, void (*add)(Counter, ipc::Event), Counter counter) {
    ipc::Event go;
    std::vector<ipc::Process> processes;
    for (int k = 0; k < workers; ++k) processes.emplace_back(ipc::ProcessOptions{.start_method = method}, add, counter, go);
    for (auto& p : processes) p.start();
    go.set();
    for (auto& p : processes) p.join();
}

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    const auto method = ipc::parse_start_method(argc > 1 ? argv[1] : "fork");
    constexpr int total = workers * increments;

    ipc::RawValue<int> unlocked(0);
    run(method, add_without_lock, unlocked);
    // How many are lost depends on how the processes overlapped: often many, rarely none.
    std::cout << "without a lock: " << unlocked.value() << " of " << total << '\n';

    ipc::Value<int> locked(0);
    run(method, add_with_lock, locked);
    std::cout << "with a lock: " << locked.value() << " of " << total << '\n';
    return locked.value() == total ? 0 : 1;
}
