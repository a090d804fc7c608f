// Links the installed ipc package and starts one child by each start method.
#include <iostream>

#include <ipc/ipc.hpp>

int square(int x) { return x * x; }

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    for (auto method : {ipc::StartMethod::fork, ipc::StartMethod::spawn}) {
        ipc::Process child({.start_method = method}, square, 7);
        child.start();
        child.join();
        if (child.exitcode() != 49) {
            std::cerr << "consumer: " << ipc::to_string(method) << " child exited with " << child.exitcode().value_or(-1000)
                      << '\n';
            return 1;
        }
    }
    std::cout << "consumer: the installed ipc package works under fork and spawn\n";
}
