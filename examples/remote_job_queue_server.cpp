// examples/remote_job_queue_server.cpp — Python's remote manager example as a C++ program: a server
// that holds a queue of jobs and a queue of results and serves them over TCP to any program that
// knows the key (remote_job_queue_client), until a client shuts it down. Python:
//   QueueManager.register('get_jobs', callable=lambda: jobs)
//   QueueManager(address=('', 50000), authkey=b'abracadabra').get_server().serve_forever()
//
//   usage: remote_job_queue_server [HOST:PORT [AUTHKEY]]   (default 127.0.0.1:50000 abracadabra;
//          port 0 picks a free one, printed on the first line)
#include <iostream>
#include <string>

#include <ipc/ipc.hpp>

#include "remote_job_queue.hpp"

namespace {

JobQueue<int>& jobs() {
    static JobQueue<int> queue;
    return queue;
}

JobQueue<std::string>& results() {
    static JobQueue<std::string> queue;
    return queue;
}

}  // namespace

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    const std::string address = "tcp://" + std::string(argc > 1 ? argv[1] : "127.0.0.1:50000");
    const std::string authkey = argc > 2 ? argv[2] : "abracadabra";
    try {
        ipc::BaseManager manager(address, authkey);
        // Every create("get_jobs") serves the same queue: the callable returns a reference to it.
        manager.register_type<JobQueue<int>>("get_jobs", [] { return &jobs(); })
            .concurrent()
            .method<&JobQueue<int>::put>("put")
            .method<&JobQueue<int>::get>("get")
            .method<&JobQueue<int>::qsize>("qsize");
        manager.register_type<JobQueue<std::string>>("get_results", [] { return &results(); })
            .concurrent()
            .method<&JobQueue<std::string>::put>("put")
            .method<&JobQueue<std::string>::get>("get");
        auto server = manager.get_server();
        std::cout << "server: serving on " << server.address() << std::endl;
        server.serve_forever();
        std::cout << "server: shut down by a client; " << jobs().qsize() << " jobs left" << std::endl;
        return 0;
    } catch (const ipc::Error& error) {
        std::cerr << "server: " << error.what() << '\n';
        return 1;
    }
}
