// ipc/process.hpp — Python's multiprocessing.Process for C++: start a target in a child process by
// fork, spawn (a fresh exec of this program) or forkserver, then join, terminate or kill it and read its exit code.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ipc/detail/target.hpp"
#include "ipc/error.hpp"

namespace ipc {

/// How a child starts: `fork` copies this process; `spawn` runs this program afresh and hands it
/// only the target and its arguments; `forkserver` has a server (this program run afresh once, a
/// single thread) fork the child, which then gets its target and arguments as under spawn.
enum class StartMethod { fork, spawn, forkserver };

[[nodiscard]] std::string_view to_string(StartMethod method) noexcept;
/// "fork", "spawn" or "forkserver"; anything else is a ValueError.
[[nodiscard]] StartMethod parse_start_method(std::string_view name);

/// Sets the default start method. As in Python, a second call without `force` is an error.
void set_start_method(StartMethod method, bool force = false);
void set_start_method(std::string_view method, bool force = false);
/// The default start method (`fork` unless set).
[[nodiscard]] StartMethod get_start_method();
[[nodiscard]] std::vector<std::string> get_all_start_methods();
/// Functions the forkserver runs once when it starts, before it forks any child, so that every
/// child starts with what they prepared (Python's list of modules to import). For the next server
/// started: a running one is not changed. Plain functions of this program or its libraries; a
/// null one is a ValueError.
void set_forkserver_preload(std::vector<void (*)()> functions);

/// Call first in main(), as Python programs guard with `if __name__ == '__main__'`. In the main
/// program it returns at once; in a spawned child (or the forkserver) it runs the target (or
/// serves) and exits, never returning.
void init(int argc, char** argv);
/// The same, reading the command line from /proc/self/cmdline.
void init();

struct ProcessOptions {
    std::string name = {};                        ///< empty: "Process-N", numbered as Python does
    std::optional<bool> daemon = {};              ///< empty: inherited from the creating process
    std::optional<StartMethod> start_method = {}; ///< empty: get_start_method() at start()
};

/// The identity of a process that is not a child of the caller: the current one or its parent.
class ProcessInfo {
public:
    ProcessInfo(std::string name, pid_t pid, bool daemon = false) : name_(std::move(name)), pid_(pid), daemon_(daemon) {}
    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    [[nodiscard]] bool daemon() const noexcept { return daemon_; }
    /// Empty: a running process has no exit code (Python's current_process().exitcode is None).
    [[nodiscard]] std::optional<int> exitcode() const noexcept { return std::nullopt; }
    [[nodiscard]] bool is_alive() const;
    /// The key this process and its children share (Python's authkey): 32 random bytes made in
    /// the main program, inherited by every child under every start method; the parent's is ours.
    [[nodiscard]] std::vector<std::byte> authkey() const;
    /// Replaces this process's key for the children it starts from now on (set it before other
    /// threads start children); a ValueError for another process's info or an empty key.
    void set_authkey(std::vector<std::byte> key) const;

private:
    std::string name_;
    pid_t pid_;
    bool daemon_ = false;
};

namespace detail {
struct ProcessState;
}

/// A child process running `target(args...)`. Copies of a Process refer to the same child.
///
/// Under spawn and forkserver the target must be a plain function, a captureless lambda or a serializable function
/// object, and every argument encodable by ipc::codec; otherwise start() says which one is not.
class Process {
public:
    template <class F, class... Args>
        requires(!std::is_same_v<std::decay_t<F>, ProcessOptions>)
    explicit Process(F&& target, Args&&... args)
        : Process(ProcessOptions{}, detail::make_target(std::forward<F>(target), std::forward<Args>(args)...)) {}

    template <class F, class... Args>
    Process(ProcessOptions options, F&& target, Args&&... args)
        : Process(std::move(options), detail::make_target(std::forward<F>(target), std::forward<Args>(args)...)) {}

    /// Starts the child. Under spawn and forkserver it returns once the child has decoded its arguments, so a
    /// target or argument that cannot cross is reported here, as a ProcessError.
    void start();
    /// Waits until the child ends.
    void join();
    /// Waits at most `timeout` (negative counts as zero); true when the child has ended.
    template <class Rep, class Period>
    bool join(std::chrono::duration<Rep, Period> timeout) {
        const auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout);
        return join_for(std::max(wait, std::chrono::nanoseconds(0)));
    }
    [[nodiscard]] bool is_alive();
    /// Empty before start().
    [[nodiscard]] std::optional<pid_t> pid() const;
    /// Empty while running; 0 on return, 1 when the target threw, its int result if it returned one
    /// (the OS keeps its low 8 bits), -N when killed by signal N; 255 when code outside ipc
    /// collected the status first (waitpid(-1), SIGCHLD ignored).
    [[nodiscard]] std::optional<int> exitcode();
    /// SIGINT, as Python 3.14's interrupt(): the child's default handler ends it.
    void interrupt();
    /// SIGTERM.
    void terminate();
    /// SIGKILL.
    void kill();
    /// Releases the handle's resources; a ValueError while the child runs. Most calls fail
    /// afterwards, with a ValueError, as in Python.
    void close();

    [[nodiscard]] const std::string& name() const;
    void set_name(std::string name);
    [[nodiscard]] bool daemon() const;
    /// Only before start(). Daemon children are terminated when their parent exits normally.
    void set_daemon(bool daemon);
    [[nodiscard]] StartMethod start_method() const;
    /// A descriptor that becomes readable when the child ends (a pidfd; under forkserver, the
    /// socket the server reports the exit status on, readable once it has); a ValueError before
    /// start() or after close(), as in Python.
    [[nodiscard]] int sentinel() const;

    friend bool operator==(const Process& a, const Process& b) noexcept { return a.state_ == b.state_; }

private:
    friend std::vector<Process> active_children();
    Process(ProcessOptions options, std::unique_ptr<detail::Target> target);
    explicit Process(std::shared_ptr<detail::ProcessState> state) noexcept : state_(std::move(state)) {}
    bool join_for(std::chrono::nanoseconds timeout);

    std::shared_ptr<detail::ProcessState> state_;
};

/// This process: "MainProcess" in the program itself.
[[nodiscard]] ProcessInfo current_process();
/// The process that started this one; empty in the main program.
[[nodiscard]] std::optional<ProcessInfo> parent_process();
/// The children started by this process that are still running (finished ones are reaped).
[[nodiscard]] std::vector<Process> active_children();
/// The number of CPUs in the system (Python's os.cpu_count()).
[[nodiscard]] int cpu_count();
/// The number of CPUs this process may run on (its affinity; Python 3.13's process_cpu_count()):
/// what a Pool starts by default.
[[nodiscard]] int process_cpu_count();

}  // namespace ipc
