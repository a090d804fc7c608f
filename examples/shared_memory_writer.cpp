// examples/shared_memory_writer.cpp — one program puts text into a named SharedMemory block and
// exits; another (shared_memory_reader) reads it later. Python: SharedMemory(name, create=True, size=…)
//
//   usage: shared_memory_writer NAME TEXT
#include <unistd.h>

#include <cstring>
#include <iostream>

#include <ipc/ipc.hpp>

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    if (argc != 3) {
        std::cerr << "usage: shared_memory_writer NAME TEXT\n";
        return 2;
    }
    const std::string text = argv[2];
    // A named block outlives this program until someone unlinks it (the reader does).
    ipc::SharedMemory block(argv[1], /*create=*/true, text.size() + 1);
    std::memcpy(block.buf().data(), text.c_str(), text.size() + 1);
    std::cout << "writer (pid " << getpid() << "): wrote " << text.size() << " bytes to '" << block.name() << "'\n";
}
