// examples/pipe_and_queue.cpp — a worker reads numbers from a Pipe until end of file and answers
// on a Queue. Python: conn1, conn2 = Pipe(); q = Queue(); Process(target=worker, args=(conn2, q))
//
//   usage: pipe_and_queue [fork|spawn]
#include <iostream>
#include <string>

#include <ipc/ipc.hpp>

void worker(ipc::Connection conn, ipc::Queue<std::string> results) {
    for (;;) {
        try {
            const int n = conn.recv<int>();
            results.put("square of " + std::to_string(n) + " is " + std::to_string(n * n));
        } catch (const ipc::EOFError&) {
            results.put("worker: end of file, bye");
            return;  // every holder of the other end closed it (or died)
        }
    }
}

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    const auto method = ipc::parse_start_method(argc > 1 ? argv[1] : "fork");

    auto [mine, theirs] = ipc::Pipe();
    ipc::Queue<std::string> results;
    ipc::Process p({.start_method = method}, worker, theirs, results);
    p.start();
    theirs.close();  // only the worker holds that end now, so closing ours gives it EOF

    for (int n = 1; n <= 3; ++n) {
        mine.send(n);
        std::cout << results.get() << '\n';
    }
    mine.close();
    std::cout << results.get() << '\n';
    p.join();
    std::cout << "worker exit code " << *p.exitcode() << '\n';
}
