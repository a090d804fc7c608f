// examples/listener_server.cpp — a program that waits at an address for another program
// (listener_client) and answers its lines until it hangs up. Python: Listener(address, authkey=…)
//
//   usage: listener_server ADDRESS AUTHKEY     (ADDRESS: a socket path, or @name for an abstract one)
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <string>

#include <ipc/ipc.hpp>

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    if (argc != 3) {
        std::cerr << "usage: listener_server ADDRESS AUTHKEY\n";
        return 2;
    }
    try {
        // Only a client that knows the key gets through; the socket only introduces the two programs,
        // the messages then travel through shared memory.
        ipc::Listener listener(argv[1], /*backlog=*/1, std::string(argv[2]));
        std::cout << "server (pid " << getpid() << "): listening on " << listener.address() << std::endl;
        ipc::Connection conn = listener.accept();
        std::cout << "server: accepted client pid " << listener.last_accepted()->pid << '\n';
        for (;;) {
            std::string line;
            try {
                line = conn.recv<std::string>();
            } catch (const ipc::EOFError&) {
                break;  // the client closed its end, or died
            }
            std::cout << "server: got '" << line << "'\n";
            std::transform(line.begin(), line.end(), line.begin(), [](unsigned char c) { return std::toupper(c); });
            conn.send(line);
        }
        std::cout << "server: the client hung up, bye\n";
    } catch (const ipc::Error& error) {  // also a client with the wrong key: AuthenticationError
        std::cerr << "server: " << error.what() << '\n';
        return 1;
    }
    // The Listener is gone: it removed its socket file on the way out.
}
