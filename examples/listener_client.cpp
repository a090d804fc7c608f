// examples/listener_client.cpp — connects to a running listener_server by its address, sends a few
// lines and prints the answers. Python: Client(address, authkey=…)
//
//   usage: listener_client ADDRESS AUTHKEY
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <string>

#include <ipc/ipc.hpp>

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    if (argc != 3) {
        std::cerr << "usage: listener_client ADDRESS AUTHKEY\n";
        return 2;
    }
    try {
        // The handshake is mutual: the client also checks that the server knows the key.
        ipc::Connection conn = ipc::Client(argv[1], {.authkey = argv[2], .timeout = std::chrono::seconds(30)});
        std::cout << "client (pid " << getpid() << "): connected to " << argv[1] << '\n';
        for (const std::string line : {"hello", "shared memory"}) {
            conn.send(line);
            std::cout << "client: '" << line << "' came back as '" << conn.recv<std::string>() << "'\n";
        }
        conn.close();  // the server reads end of file
    } catch (const ipc::Error& error) {  // no server there, the wrong key, …
        std::cerr << "client: " << error.what() << '\n';
        return 1;
    }
}
