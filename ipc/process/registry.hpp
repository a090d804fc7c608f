// process/registry.hpp — this process's bookkeeping behind Process: who it is (name, identity,
// parent), the children it started and has not seen end, and how a child's end is collected.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ipc/detail/target.hpp"
#include "ipc/process.hpp"

namespace ipc::detail {

/// The exit code reported when the status was collected outside ipc.
inline constexpr int unknown_exit_code = 255;

/// One child, shared by the copies of its Process handle.
struct ProcessState {
    ProcessState() = default;
    ProcessState(const ProcessState&) = delete;
    ProcessState& operator=(const ProcessState&) = delete;
    ~ProcessState();
    /// Closes the pidfd and the status socket (after close(), in a forked child, at the end).
    void close_descriptors() noexcept;
    /// What becomes readable when the child ends: the status socket under forkserver, else the pidfd.
    [[nodiscard]] int end_descriptor() const noexcept { return status_fd >= 0 ? status_fd : pidfd; }

    mutable std::mutex mutex;
    std::string name;
    std::vector<int> identity;
    bool daemon = false;
    std::optional<StartMethod> requested_method;
    StartMethod method = StartMethod::fork;
    std::unique_ptr<Target> target;
    pid_t creator = 0;  // only the creating process may start, join or signal the child
    pid_t pid = 0;
    int pidfd = -1;
    // forkserver: the socket on which the server reports the exit status (the sentinel). Should the
    // server die first, a copy of the pidfd takes its number, and the exit code is unknown.
    int status_fd = -1;
    bool server_lost = false;
    std::optional<int> exitcode;
    bool started = false;
    bool closed = false;
};

/// Who this process is; copied into a forked child and sent to a spawned one.
struct Identity {
    std::string name = "MainProcess";
    std::vector<int> identity;  // empty in the main program, {1, 2} in "Process-1:2"
    bool daemon = false;
    pid_t parent_pid = 0;
    std::string parent_name;
    std::vector<std::byte> authkey;       // the parent's; random bytes made before main() in the main program
    std::optional<StartMethod> started_by;  // how this process was started; empty in the main program
};

/// This process's authentication key: inherited from the parent, or 32 random bytes made before
/// main() in the main program.
const std::vector<std::byte>& current_authkey();

/// While one lives on this thread, fork starts do not warn about other threads: a Pool's own
/// threads are built for its forks.
class ForkWarningSuppressed {
public:
    ForkWarningSuppressed() noexcept;
    ~ForkWarningSuppressed();
    ForkWarningSuppressed(const ForkWarningSuppressed&) = delete;
    ForkWarningSuppressed& operator=(const ForkWarningSuppressed&) = delete;
};
bool fork_warning_suppressed() noexcept;
void set_current_authkey(std::vector<std::byte> key);

Identity& self();
/// The next child identity and default name, numbered as Python does ("Process-1:2").
std::pair<std::vector<int>, std::string> next_child_identity();
/// The program name for a spawned child's argv[0]; empty until init() ran.
const std::string& program_name();
bool init_called();
/// Records that init() ran and the program name to give spawned children.
void mark_initialized(std::string program);
/// The start method set by set_start_method (or handed to a spawned child); empty when none was.
std::optional<StartMethod>& chosen_start_method();
StartMethod default_start_method();

/// The children this process started and has not yet found ended.
void register_child(std::shared_ptr<ProcessState> state);
std::vector<std::shared_ptr<ProcessState>> live_children();
/// Drops an ended child from the registry. Caller must not hold its mutex.
void forget_child(const ProcessState& state);
/// Lock held across fork() so that the child inherits a consistent registry.
std::mutex& children_mutex();
/// In a new child: forget the parent's children (closing their pidfds) and take the new identity.
void become_child(const Identity& identity);

/// Checks whether the child ended, without blocking; records the exit code. Caller holds state.mutex.
void try_reap_locked(ProcessState& state);
/// Blocks until the child may be reaped or `timeout` passes (negative: forever), without holding
/// its mutex; true when it ended.
bool wait_exit(ProcessState& state, std::chrono::nanoseconds timeout);
/// A pidfd for `pid` (close-on-exec), or -1 where the kernel has none.
int open_pidfd(pid_t pid) noexcept;
/// Sends `signal` to the started child unless it has ended (through its pidfd where there is one,
/// so a recycled pid is never hit). Caller holds state.mutex.
void signal_child_locked(ProcessState& state, int signal, const char* operation);
/// The exit code of a wait(2) status: the code, or minus the signal that killed it.
int exit_code_of(int wait_status) noexcept;

/// Terminates daemon children and joins the others, as Python does when a process exits.
void exit_cleanup() noexcept;
void ensure_exit_cleanup_registered();

}  // namespace ipc::detail
