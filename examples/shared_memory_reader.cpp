// examples/shared_memory_reader.cpp — attaches by name to the block shared_memory_writer left,
// prints its text and removes the name. Python: SharedMemory(name); shm.unlink()
//
//   usage: shared_memory_reader NAME
#include <unistd.h>

#include <iostream>

#include <ipc/ipc.hpp>

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    if (argc != 2) {
        std::cerr << "usage: shared_memory_reader NAME\n";
        return 2;
    }
    try {
        ipc::SharedMemory block(argv[1]);  // attach: FileNotFoundError if no writer made it
        const auto bytes = block.buf();
        std::cout << "reader (pid " << getpid() << "): read '" << reinterpret_cast<const char*>(bytes.data()) << "' from '"
                  << block.name() << "'\n";
        block.unlink();  // the name is gone; the memory goes with the last mapping
    } catch (const ipc::Error& error) {
        std::cerr << "reader: " << error.what() << '\n';
        return 1;
    }
}
