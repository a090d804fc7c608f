// tests/harness.hpp — what every multi-process test needs: each scenario under fork and spawn,
// bounded waits that fail instead of hanging, and checks that nothing (fd, zombie, /dev/shm) leaks.
#pragma once

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <optional>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "process/launch.hpp"
#include "shm/resource_tracker.hpp"
#include "ipc/connection.hpp"
#include "ipc/process.hpp"

namespace Catch {
template <>
struct StringMaker<ipc::StartMethod> {
    static std::string convert(ipc::StartMethod method) { return std::string(ipc::to_string(method)); }
};
}  // namespace Catch

/// Runs the rest of the test case once under each start method (fork, spawn, forkserver), and
/// labels every failure with the method. A macro because it declares a variable and a scoped INFO
/// in the caller.
#define IPC_EACH_START_METHOD(method)                                                            \
    const ::ipc::StartMethod method =                                                            \
        GENERATE(::ipc::StartMethod::fork, ::ipc::StartMethod::spawn, ::ipc::StartMethod::forkserver); \
    INFO("start method: " << ::ipc::to_string(method))

namespace ipc::test {

using namespace std::chrono_literals;

/// How long any single wait in a test may take before it counts as a hang.
inline constexpr auto bound = std::chrono::seconds(30);

/// Joins within `bound`; a child still running then is killed, reaped, and the test fails.
inline std::optional<int> join_bounded(Process& process, std::chrono::nanoseconds limit = bound) {
    if (!process.join(limit)) {
        process.kill();
        process.join(bound);
        FAIL("process '" << process.name() << "' did not end within the test's bound");
    }
    return process.exitcode();
}

/// Starts `target(args...)` with `method`, joins it within the bound and returns its exit code.
template <class F, class... Args>
std::optional<int> run(StartMethod method, F&& target, Args&&... args) {
    Process process({.start_method = method}, std::forward<F>(target), std::forward<Args>(args)...);
    process.start();
    return join_bounded(process);
}

/// Kills and reaps a child the test did not finish with (a failed assertion left it running).
/// An owned raw socket descriptor.
class Socket {
public:
    explicit Socket(int fd) : fd_(fd) {}
    Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Socket& operator=(Socket&&) = delete;
    ~Socket() { reset(); }
    [[nodiscard]] int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset() noexcept {
        if (fd_ >= 0) ::close(std::exchange(fd_, -1));
    }

private:
    int fd_;
};

class Reaper {
public:
    explicit Reaper(Process& process) : process_(process) {}
    ~Reaper() {
        try {
            if (process_.pid() && process_.is_alive()) {
                process_.kill();
                process_.join(bound);
            }
        } catch (...) {
        }
    }
    Reaper(const Reaper&) = delete;
    Reaper& operator=(const Reaper&) = delete;

private:
    Process& process_;
};

inline std::set<std::string> directory_entries(const std::filesystem::path& directory) {
    std::set<std::string> entries;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(directory, error)) entries.insert(entry.path().filename());
    return entries;
}

/// The descriptors open in this process, leaving out the forkserver's socket: like the resource
/// tracker's, it is opened on first use and kept for the rest of the process.
inline std::size_t open_fd_count() {
    auto entries = directory_entries("/proc/self/fd");
    if (const int server = ipc::detail::forkserver_socket(); server >= 0) entries.erase(std::to_string(server));
    return entries.size();
}

/// True when some child of this process has ended and was not reaped.
inline bool has_zombie_children() {
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0) return false;  // ECHILD: no children at all
    return info.si_pid != 0;
}

/// A scope guard: records fds and /dev/shm entries when made, and when its scope ends fails the
/// test on anything new, and on an unreaped child. Declared first in a test, it checks once every
/// other object of the test is gone (its Reapers have killed and reaped what the test left).
/// Not while an exception unwinds (a failed REQUIRE): the test has failed already.
class LeakCheck {
public:
    // The resource tracker's socket is opened once per process, on first use: open it before counting.
    LeakCheck() : fds_((ipc::detail::ensure_resource_tracker(), open_fd_count())), shm_(directory_entries("/dev/shm")) {}
    ~LeakCheck() {
        if (std::uncaught_exceptions() == 0) check();
    }
    LeakCheck(const LeakCheck&) = delete;
    LeakCheck& operator=(const LeakCheck&) = delete;

private:
    void check() const {
        CHECK(open_fd_count() == fds_);
        CHECK_FALSE(has_zombie_children());
        std::vector<std::string> added;
        for (const auto& name : directory_entries("/dev/shm"))
            if (!shm_.count(name) && !owned_by_another_live_program(name)) added.push_back(name);
        INFO("new /dev/shm entries: " << Catch::Detail::stringify(added));
        CHECK(added.empty());
    }

    /// An anonymous segment is named ipc_<creator pid>_…: one whose creator still runs and is not
    /// this test's process belongs to a program running beside the suite (a benchmark), not to us.
    /// Our own children have ended by the time a test checks, so theirs still count.
    static bool owned_by_another_live_program(const std::string& name) {
        pid_t creator = 0;
        if (std::sscanf(name.c_str(), "ipc_%d_", &creator) != 1 || creator <= 0 || creator == ::getpid()) return false;
        const auto status = read_status_ppid(creator);
        return status && *status != ::getpid();
    }
    /// The parent pid of a live process, empty when it is gone.
    static std::optional<pid_t> read_status_ppid(pid_t pid) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
        std::string line;
        if (!std::getline(in, line)) return std::nullopt;
        const auto close = line.rfind(')');
        if (close == std::string::npos) return std::nullopt;
        char state = 0;
        pid_t parent = 0;
        if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &parent) != 2 || state == 'Z') return std::nullopt;
        return parent;
    }

    std::size_t fds_;
    std::set<std::string> shm_;
};

/// A private temporary folder, removed with everything in it; children report through files in it.
class TempDir {
public:
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "ipc-test-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code error;
        std::filesystem::remove_all(path_, error);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

inline void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path + ".tmp");
    out << text;
    out.close();
    std::filesystem::rename(path + ".tmp", path);  // readers never see half a file
}

inline std::string read_file(const std::string& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace ipc::test

namespace ipc::test {

/// A name for a user-named shared object that no other test run can take.
inline std::string unique_name(const std::string& what) {
    static int counter = 0;
    return "ipc-test-" + std::to_string(::getpid()) + "-" + what + "-" + std::to_string(++counter);
}

/// True once process `pid` sleeps in the kernel on a futex (waiting, not spinning): a wake-up test
/// waits for this, so that what it tests is the wake-up of a sleeper, not a waiter that never slept.
inline bool sleeps_on_futex(pid_t pid) {
    return read_file("/proc/" + std::to_string(pid) + "/wchan").find("futex") != std::string::npos;
}

/// The next T on `connection` (or its EOFError); the test fails, instead of hanging, when neither
/// comes within the bound.
template <class T>
T recv_bounded(ipc::Connection& connection) {
    REQUIRE(connection.poll(bound));
    return connection.template recv<T>();
}

/// The message of the E that `action` throws; fails the test when it throws nothing (or another type).
template <class E, class Action>
std::string error_of(Action action) {
    try {
        action();
    } catch (const E& error) {
        return error.what();
    }
    FAIL("no exception of the expected type was thrown");
    return {};
}

/// Polls `condition` until it holds or `limit` passes; for effects no primitive can signal (a file
/// removed by another process). Returns the last value of `condition`.
template <class Condition>
bool eventually(Condition condition, std::chrono::nanoseconds limit = bound) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline) return condition();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

}  // namespace ipc::test
