// examples/process_pids.cpp — the first multiprocessing program: a child prints its pid beside the
// parent's, and join() makes the parent wait. Python:  p = Process(target=coding); p.start(); p.join()
//
//   usage: process_pids [fork|spawn]
#include <unistd.h>

#include <iostream>

#include <ipc/ipc.hpp>

void coding() {
    std::cout << "child " << ipc::current_process().name() << ": start coding, pid " << getpid() << ", parent "
              << ipc::parent_process()->pid() << '\n';
    std::cout << "child " << ipc::current_process().name() << ": take a break, pid " << getpid() << '\n';
}

int main(int argc, char** argv) {
    ipc::init(argc, argv);  // must come first: under spawn, the child runs coding() from here and exits
    const auto method = ipc::parse_start_method(argc > 1 ? argv[1] : "fork");

    std::cout << "main process, pid " << getpid() << ", start method " << ipc::to_string(method) << '\n';
    ipc::Process p({.start_method = method}, coding);
    p.start();
    p.join();  // without join, the next line could print before the child's
    std::cout << "main process, pid " << getpid() << ": child " << p.name() << " (pid " << *p.pid()
              << ") ended with exit code " << *p.exitcode() << '\n';
}
