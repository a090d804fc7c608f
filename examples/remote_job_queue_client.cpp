// examples/remote_job_queue_client.cpp — a program that uses the queues remote_job_queue_server
// serves, knowing only its address and key (Python: QueueManager.register('get_jobs');
// m.connect(); m.get_jobs().put(...)). Roles:
//   work    takes jobs until a 0 arrives; for each job n puts "n*n=<square>" on the results queue
//   submit  puts the jobs 1..N and one 0 per worker, collects N results, checks them and shuts
//           the server down
//
//   usage: remote_job_queue_client HOST:PORT AUTHKEY work
//          remote_job_queue_client HOST:PORT AUTHKEY submit N WORKERS
#include <unistd.h>

#include <iostream>
#include <string>

#include <ipc/ipc.hpp>

#include "remote_job_queue.hpp"

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    if (argc < 4) {
        std::cerr << "usage: remote_job_queue_client HOST:PORT AUTHKEY work|submit N WORKERS\n";
        return 2;
    }
    const std::string role = argv[3];
    try {
        ipc::BaseManager manager("tcp://" + std::string(argv[1]), argv[2]);
        manager.connect();  // no registration needed: the server says what it serves
        auto jobs = manager.create<JobQueue<int>>("get_jobs");
        auto results = manager.create<JobQueue<std::string>>("get_results");
        if (role == "work") {
            int done = 0;
            for (int job; (job = jobs.call<&JobQueue<int>::get>(60.0)) != 0; ++done)
                results.call<&JobQueue<std::string>::put>(std::to_string(job) + "*" + std::to_string(job) + "=" +
                                                          std::to_string(job * job));
            std::cerr << "worker (pid " << getpid() << "): did " << done << " jobs\n";
            return 0;
        }
        if (role == "submit" && argc == 6) {
            const int count = std::stoi(argv[4]);
            const int workers = std::stoi(argv[5]);
            for (int job = 1; job <= count; ++job) jobs.call<&JobQueue<int>::put>(job);
            for (int worker = 0; worker < workers; ++worker) jobs.call<&JobQueue<int>::put>(0);
            long long sum = 0;
            for (int i = 0; i < count; ++i) {
                const auto result = results.call<&JobQueue<std::string>::get>(60.0);
                sum += std::stoll(result.substr(result.find('=') + 1));
            }
            const long long expected = static_cast<long long>(count) * (count + 1) * (2 * count + 1) / 6;
            std::cout << "submit: " << count << " results from " << workers << " workers, sum of squares " << sum
                      << (sum == expected ? " (correct)" : " (WRONG)") << std::endl;
            manager.shutdown();  // asks the server to stop serving
            return sum == expected ? 0 : 1;
        }
        std::cerr << "unknown role '" << role << "'\n";
        return 2;
    } catch (const ipc::Error& error) {
        std::cerr << "client: " << error.what() << '\n';
        return 1;
    }
}
