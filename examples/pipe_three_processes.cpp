// examples/pipe_three_processes.cpp — one Pipe between three processes: the parent holds one end,
// two children share the other. Each number the parent sends reaches exactly one child; closing
// the parent's end gives both children EOF once they drained it.
// Python:  a, b = Pipe(); Process(target=square, args=(b, 'I2')); Process(..., args=(b, 'I3'))
//          a.send(n) ...; a.close()   # the children see EOFError
//
//   usage: pipe_three_processes [fork|spawn]
#include <iostream>
#include <string>
#include <vector>

#include <ipc/ipc.hpp>

// Both children read from the same end: whoever calls recv() first takes the next number. They
// answer on the same end, which carries the squares back to the parent's end.
void square(ipc::Connection end, std::string who) {
    int taken = 0;
    for (;;) {
        try {
            const int n = end.recv<int>();
            end.send(n * n);
            ++taken;
        } catch (const ipc::EOFError&) {
            // The parent closed its end and nothing is left to read: no more work will come.
            std::cout << "child " << who << ": end of file, squared " << taken << " of the numbers\n";
            return;
        }
    }
}

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    const auto method = ipc::parse_start_method(argc > 1 ? argv[1] : "fork");

    auto [parent_end, children_end] = ipc::Pipe();
    std::vector<ipc::Process> children;
    for (const char* who : {"I2", "I3"})
        children.emplace_back(ipc::ProcessOptions{.start_method = method}, square, children_end, who);
    for (auto& child : children) child.start();
    children_end.close();  // only the children hold that end now

    constexpr int count = 10;
    for (int n = 1; n <= count; ++n) parent_end.send(n);

    long sum = 0;
    for (int i = 0; i < count; ++i) sum += parent_end.recv<int>();
    // Flushed now: the children print when they see EOF, and their lines must come after this one.
    std::cout << "parent: the squares of 1.." << count << " add up to " << sum << std::endl;

    parent_end.close();  // both children, blocked in recv(), get EOFError now
    for (auto& child : children) child.join();
    std::cout << "parent: both children ended with exit code " << *children[0].exitcode() << " and "
              << *children[1].exitcode() << '\n';
}
