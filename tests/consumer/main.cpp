// Links ipc (installed, a build tree, add_subdirectory or FetchContent: see CMakeLists.txt), starts
// one child by each start method and meets a Client with an authkey (so OpenSSL, which a static ipc
// needs, must come along through ipcConfig.cmake).
#include <unistd.h>

#include <iostream>
#include <thread>

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
    ipc::Listener listener("@ipc-consumer-" + std::to_string(getpid()), {.authkey = "key"});
    std::thread client([&] { ipc::Client(listener.address(), "key").send(std::string("hi")); });
    const auto greeting = listener.accept(std::chrono::seconds(30)).recv<std::string>();
    client.join();
    if (greeting != "hi") {
        std::cerr << "consumer: the Listener got '" << greeting << "'\n";
        return 1;
    }
    std::cout << "consumer: ipc works under fork and spawn, and with Listener/Client\n";
}
