// process/init.cpp — ipc::init, the first call in main(): in a spawned child it runs the task the
// parent sent and exits, in the forkserver it serves; in the program itself it records what
// spawned children need.
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/process.hpp"
#include "process/launch.hpp"

namespace ipc {

namespace detail {

namespace {
std::vector<void (*)(int, char**)>& init_hooks() {
    static std::vector<void (*)(int, char**)> hooks;
    return hooks;
}
}  // namespace

void add_init_hook(void (*hook)(int argc, char** argv)) { init_hooks().push_back(hook); }

}  // namespace detail

void init(int argc, char** argv) {
    std::string program = argc > 0 && argv && argv[0] ? argv[0] : "ipc-child";
    detail::mark_initialized(std::move(program));
    if (argc >= 2 && argv[1] && std::string_view(argv[1]) == detail::spawn_marker) detail::run_spawned_child();
    if (argc >= 2 && argv[1] && std::string_view(argv[1]) == detail::forkserver_marker) detail::run_forkserver();
    for (auto* hook : detail::init_hooks()) hook(argc, argv);
}

void init() {
    std::ifstream file("/proc/self/cmdline", std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    std::vector<std::string> words;
    for (std::size_t start = 0; start < all.size();) {
        auto end = all.find('\0', start);
        if (end == std::string::npos) end = all.size();
        words.emplace_back(all.substr(start, end - start));
        start = end + 1;
    }
    std::vector<char*> argv;
    for (auto& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);
    init(static_cast<int>(words.size()), argv.data());
}

}  // namespace ipc
