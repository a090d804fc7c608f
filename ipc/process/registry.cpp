// process/registry.cpp — this process's identity and children: numbering, registering, reaping,
// and the exit cleanup that joins them (daemons terminated first), as Python's does.
#include "process/registry.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "process/launch.hpp"
#include "sys/fd.hpp"

namespace ipc::detail {

namespace {

struct Runtime {
    Identity identity;
    std::atomic<int> child_counter{0};
    std::optional<StartMethod> start_method;
    std::mutex children_mutex;
    std::vector<std::shared_ptr<ProcessState>> children;
    // A forked child's copy of its parent's children. Kept, not destroyed: destroying them would run
    // the destructors of the siblings' arguments (which may own shared objects) in the wrong process.
    std::vector<std::shared_ptr<ProcessState>> inherited;
    std::string program;
    bool init_called = false;
    std::once_flag exit_hook;
};

Runtime& runtime() {
    static Runtime instance;
    return instance;
}

std::string describe(const ProcessState& state) { return "process '" + state.name + "'"; }

}  // namespace

ProcessState::~ProcessState() { close_descriptors(); }

void ProcessState::close_descriptors() noexcept {
    if (pidfd >= 0) ::close(pidfd);
    if (status_fd >= 0) ::close(status_fd);
    pidfd = -1;
    status_fd = -1;
}

Identity& self() { return runtime().identity; }

namespace {
/// 32 random bytes; empty when the system gives none.
std::vector<std::byte> random_key() {
    std::vector<std::byte> key(32);
    if (::getrandom(key.data(), key.size(), 0) == static_cast<ssize_t>(key.size())) return key;
    return {};
}

// Made before main(), while the program has one thread: from then on the key is only read (or
// replaced by set_authkey), never made by two threads at once. A child gets its parent's instead.
[[maybe_unused]] const bool key_made_at_start = [] {
    runtime().identity.authkey = random_key();
    return true;
}();
}  // namespace

const std::vector<std::byte>& current_authkey() {
    auto& key = runtime().identity.authkey;
    if (key.empty()) {  // getrandom failed before main(): try once more, and say so if it fails again
        key = random_key();
        if (key.empty()) throw_os_error("getrandom", "this process's authkey");
    }
    return key;
}

namespace {
thread_local int fork_warning_suppressions = 0;
}
ForkWarningSuppressed::ForkWarningSuppressed() noexcept { ++fork_warning_suppressions; }
ForkWarningSuppressed::~ForkWarningSuppressed() { --fork_warning_suppressions; }
bool fork_warning_suppressed() noexcept { return fork_warning_suppressions > 0; }

void set_current_authkey(std::vector<std::byte> key) {
    if (key.empty()) throw ValueError("authkey: the key must not be empty");
    runtime().identity.authkey = std::move(key);
}

std::pair<std::vector<int>, std::string> next_child_identity() {
    auto identity = runtime().identity.identity;
    identity.push_back(++runtime().child_counter);
    std::string name = "Process-";
    for (std::size_t i = 0; i < identity.size(); ++i) {
        if (i) name += ':';
        name += std::to_string(identity[i]);
    }
    return {std::move(identity), std::move(name)};
}

const std::string& program_name() { return runtime().program; }
bool init_called() { return runtime().init_called; }

void mark_initialized(std::string program) {
    runtime().program = std::move(program);
    runtime().init_called = true;
    ensure_exit_cleanup_registered();
}

std::optional<StartMethod>& chosen_start_method() { return runtime().start_method; }
StartMethod default_start_method() { return runtime().start_method.value_or(StartMethod::fork); }

void register_child(std::shared_ptr<ProcessState> state) {
    std::lock_guard lock(runtime().children_mutex);
    runtime().children.push_back(std::move(state));
}

std::vector<std::shared_ptr<ProcessState>> live_children() {
    std::vector<std::shared_ptr<ProcessState>> children;
    {
        std::lock_guard lock(runtime().children_mutex);
        children = runtime().children;
    }
    std::vector<std::shared_ptr<ProcessState>> alive;
    for (auto& child : children) {
        std::lock_guard lock(child->mutex);
        try_reap_locked(*child);
        if (!child->exitcode) alive.push_back(child);
    }
    if (alive.size() != children.size()) {
        std::lock_guard lock(runtime().children_mutex);
        std::erase_if(runtime().children, [&](const auto& child) {
            return std::find(alive.begin(), alive.end(), child) == alive.end() &&
                   std::find(children.begin(), children.end(), child) != children.end();
        });
    }
    return alive;
}

void forget_child(const ProcessState& state) {
    std::lock_guard lock(runtime().children_mutex);
    std::erase_if(runtime().children, [&](const auto& child) { return child.get() == &state; });
}

std::mutex& children_mutex() { return runtime().children_mutex; }

void become_child(const Identity& identity) {
    auto& rt = runtime();
    // The parent's children are not ours: drop them, closing the pidfds the fork duplicated. The
    // child is single-threaded here, so their mutexes are not taken (another parent thread may have
    // held one at the fork).
    for (auto& child : rt.children) {
        child->close_descriptors();
        rt.inherited.push_back(std::move(child));
    }
    rt.children.clear();
    rt.child_counter = 0;
    rt.identity = identity;
    // A child's default start method is the one it was started with, as under Python's contexts.
    if (identity.started_by) rt.start_method = identity.started_by;
}

namespace {

/// A forkserver child's end, as its server reports it. Caller holds state.mutex.
void collect_reported_status(ProcessState& state) {
    if (!state.server_lost) {
        int status = 0;
        ssize_t got;
        while ((got = ::recv(state.status_fd, &status, sizeof status, MSG_DONTWAIT)) < 0 && errno == EINTR) {
        }
        if (got == sizeof status) {
            state.exitcode = exit_code_of(status);
            // The server closes its end a moment later; the sentinel must be readable from now on,
            // as a pidfd of an ended child is: the pidfd takes the socket's number.
            if (state.pidfd >= 0) ::dup3(state.pidfd, state.status_fd, O_CLOEXEC);
            return;
        }
        if (got < 0 && errno == EAGAIN) return;  // still running
        // The server ended before it reported: from now on the sentinel is the child's pidfd.
        if (state.pidfd < 0 || ::dup3(state.pidfd, state.status_fd, O_CLOEXEC) < 0) throw_os_error("dup3", state.name);
        state.server_lost = true;
        reap_dead_forkserver();
    }
    pollfd entry{state.pidfd, POLLIN, 0};
    if (::poll(&entry, 1, 0) <= 0) return;
    std::fprintf(stderr, "ipc: the forkserver ended before it reported the exit status of %s (pid %d); reporting 255\n",
                 describe(state).c_str(), static_cast<int>(state.pid));
    state.exitcode = unknown_exit_code;
}

}  // namespace

int exit_code_of(int wait_status) noexcept {
    if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status)) return -WTERMSIG(wait_status);
    return unknown_exit_code;
}

void try_reap_locked(ProcessState& state) {
    if (state.exitcode || !state.started || state.pid <= 0) return;
    if (state.method == StartMethod::forkserver) return collect_reported_status(state);
    siginfo_t info{};
    for (;;) {
        if (::waitid(P_PID, static_cast<id_t>(state.pid), &info, WEXITED | WNOHANG) == 0) break;
        if (errno == EINTR) continue;
        if (errno == ECHILD) {
            // Someone else collected the status (waitpid(-1), SIGCHLD ignored): the child is gone
            // and its code unknown. Report it as 255 rather than block every later start().
            std::fprintf(stderr, "ipc: the exit status of %s (pid %d) was collected outside ipc; reporting 255\n",
                         describe(state).c_str(), static_cast<int>(state.pid));
            state.exitcode = unknown_exit_code;
            return;
        }
        throw_os_error("waitid", state.name);
    }
    if (info.si_pid == 0) return;  // still running
    // The pidfd stays open until close() or the last handle: a user may still poll sentinel().
    state.exitcode = info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
}

bool wait_exit(ProcessState& state, std::chrono::nanoseconds timeout) {
    const bool forever = timeout < std::chrono::nanoseconds(0);
    const auto deadline = std::chrono::steady_clock::now() + (forever ? std::chrono::nanoseconds(0) : timeout);
    for (;;) {
        int readable_at_end;
        pid_t pid;
        {
            std::lock_guard lock(state.mutex);
            try_reap_locked(state);
            if (state.exitcode) return true;
            readable_at_end = state.end_descriptor();
            pid = state.pid;
        }
        const auto left = forever ? std::chrono::nanoseconds(-1) : deadline - std::chrono::steady_clock::now();
        if (!forever && left <= std::chrono::nanoseconds(0)) return false;
        if (readable_at_end >= 0) {
            // Readable at the end; a forkserver child's status socket is also readable when its
            // server died, and then the next round waits on the pidfd that took its place.
            if (!poll_for(readable_at_end, POLLIN, left, state.name.c_str())) return false;
        } else if (forever) {
            siginfo_t info{};
            while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) < 0) {
                if (errno != EINTR) throw_os_error("waitid", state.name);
            }
        } else {
            // Without pidfds, poll the child with a growing pause, bounded by the deadline.
            std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(std::chrono::milliseconds(1), left));
        }
    }
}

int open_pidfd(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd >= 0) return fd;
#endif
    return -1;  // older kernels: join falls back to polling waitid
}

void signal_child_locked(ProcessState& state, int signal, const char* operation) {
    try_reap_locked(state);
    if (state.exitcode) return;  // already ended: as in Python, nothing to do
#ifdef SYS_pidfd_send_signal
    if (state.pidfd >= 0) {
        if (::syscall(SYS_pidfd_send_signal, state.pidfd, signal, nullptr, 0) == 0 || errno == ESRCH) return;
        if (errno != ENOSYS) throw_os_error(operation, state.name);
    }
#endif
    // Unreaped, so the pid cannot have been reused (a forkserver child always has its pidfd).
    if (::kill(state.pid, signal) < 0 && errno != ESRCH) throw_os_error(operation, state.name);
}

void exit_cleanup() noexcept {
    try {
        auto children = live_children();
        for (auto& child : children) {
            std::lock_guard lock(child->mutex);
            if (child->daemon && child->creator == ::getpid()) signal_child_locked(*child, SIGTERM, "terminate");
        }
        for (auto& child : children) {
            if (child->creator == ::getpid()) wait_exit(*child, std::chrono::nanoseconds(-1));
        }
        live_children();  // reap and forget what ended
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ipc: cleaning up children at exit failed: %s\n", e.what());
    }
}

void ensure_exit_cleanup_registered() {
    std::call_once(runtime().exit_hook, [] { std::atexit([] { exit_cleanup(); }); });
}

}  // namespace ipc::detail
