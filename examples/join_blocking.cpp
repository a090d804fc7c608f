// examples/join_blocking.cpp — what join() does: with it the parent waits for the child to end;
// without it the parent goes on at once and the child runs beside it.
// Python:  p = Process(target=work); p.start(); p.join(); print('parent continues')
//          p = Process(target=work); p.start(); print('parent continues')  # no wait
//
//   usage: join_blocking [fork|spawn]
#include <chrono>
#include <iostream>

#include <ipc/ipc.hpp>

void work() { std::cout << "child: working, then ending\n"; }

// The child of the second part waits until the parent says it went on. Without this the order
// would be up to the scheduler: an example whose output varies teaches nothing.
void work_after(ipc::Event parent_went_on) {
    if (parent_went_on.wait(std::chrono::seconds(10)))
        std::cout << "child: working, while the parent already went on\n";
    else
        std::cout << "child: the parent never went on\n";
}

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    const auto method = ipc::parse_start_method(argc > 1 ? argv[1] : "fork");

    std::cout << "-- with join\n";
    ipc::Process waited({.start_method = method}, work);
    waited.start();
    waited.join();  // blocks until the child ended, so its line is already out
    std::cout << "parent continues after the child ended (exit code " << *waited.exitcode() << ")\n";

    std::cout << "-- without join\n";
    ipc::Event went_on;
    ipc::Process free_running({.start_method = method}, work_after, went_on);
    free_running.start();
    // start() returned while the child runs: the parent is not blocked and carries on.
    std::cout << "parent continues at once" << std::endl;  // flushed before the child may print
    went_on.set();

    // Joined in the end all the same: only then is its exit code known (and at exit Python, like
    // ipc, would join a non-daemon child anyway).
    free_running.join();
    std::cout << "parent joined the child at the end (exit code " << *free_running.exitcode() << ")\n";
}
