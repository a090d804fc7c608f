// process/child.cpp — what every child runs, whatever started it: the target, its exit code, and
// (under fork) an exit that leaves the parent's atexit handlers and static objects alone.
#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "process/launch.hpp"
#include "shm/holders.hpp"

namespace ipc::detail {

namespace {
std::string demangle(const char* mangled) {
    int status = 0;
    std::unique_ptr<char, decltype(&std::free)> readable(abi::__cxa_demangle(mangled, nullptr, nullptr, &status),
                                                         &std::free);
    return status == 0 && readable ? std::string(readable.get()) : std::string(mangled);
}
}  // namespace

int run_target(Runnable& target) noexcept {
    try {
        return target.run();
    } catch (...) {
        std::string type = "unknown exception";
        if (auto* current = abi::__cxa_current_exception_type()) type = demangle(current->name());
        std::string what;
        try {
            throw;
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        std::cout.flush();
        std::fprintf(stderr, "Process '%s' (pid %d) raised %s%s%s\n", self().name.c_str(), static_cast<int>(::getpid()),
                     type.c_str(), what.empty() ? "" : ": ", what.c_str());
        return 1;
    }
}

void exit_forked_child(int code) noexcept {
    exit_cleanup();
    release_endpoints_at_exit();
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    ::_exit(code);
}

}  // namespace ipc::detail
