// examples/barrier.cpp — a Barrier(3) met by 5 processes: the first 3 to arrive pass together; the
// other 2 can never make 3, so the barrier must be broken for them or they would wait forever.
// Python:  b = Barrier(3, timeout=10); 5 x Process(target=run, args=(b, ...)); ...; b.abort()
//          def run(b): try: b.wait() except BrokenBarrierError: ...
//
//   usage: barrier [fork|spawn]
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include <ipc/ipc.hpp>

constexpr int processes = 5, parties = 3;

// Each process reports how it left the barrier, so the parent can count the outcomes (which
// processes are among the first 3 is up to the scheduler).
void run(ipc::Barrier barrier, ipc::Queue<std::string> outcomes) {
    const auto me = ipc::current_process().name();
    try {
        const unsigned arrival = barrier.wait();  // bounded by the barrier's own timeout
        std::cout << me << ": passed, arrival index " << arrival << '\n';
        outcomes.put("passed");
    } catch (const ipc::BrokenBarrierError&) {
        std::cout << me << ": the barrier is broken, no third party will come\n";
        outcomes.put("broken");
    }
}

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    const auto method = ipc::parse_start_method(argc > 1 ? argv[1] : "fork");

    // The timeout is the safety net: should nobody abort, the leftovers break it after 10 s.
    ipc::Barrier barrier(parties, nullptr, std::chrono::seconds(10));
    ipc::Queue<std::string> outcomes;
    std::vector<ipc::Process> children;
    for (int k = 0; k < processes; ++k) children.emplace_back(ipc::ProcessOptions{.start_method = method}, run, barrier, outcomes);
    for (auto& child : children) child.start();

    // Once 3 have passed, the rest cannot fill another round: abort() breaks the barrier at once,
    // for those waiting in it and for those yet to arrive, instead of waiting out the timeout.
    int passed = 0, broken = 0;
    for (int k = 0; k < processes; ++k) {
        if (outcomes.get() == "broken")
            ++broken;
        else if (++passed == parties)
            barrier.abort();
    }
    int clean_exits = 0;
    for (auto& child : children) {
        child.join();
        clean_exits += *child.exitcode() == 0;
    }
    std::cout << passed << " passed, " << broken << " found the barrier broken, " << clean_exits << " of " << processes
              << " exited with code 0\n";
}
