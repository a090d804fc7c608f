#include "ipc/process.hpp"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "ipc/detail/endpoint.hpp"
#include "ipc/fd.hpp"
#include "ipc/runtime.hpp"

namespace ipc {

namespace detail {

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

std::string describe(const ProcessState& state) {
    return "process '" + state.name + "'";
}

void require_creator(const ProcessState& state, const char* operation) {
    if (state.creator != ::getpid())
        throw ProcessError(std::string("cannot ") + operation + " " + describe(state) +
                           ": only the process that created it may (it is not a child of this process)");
}

void require_open(const ProcessState& state) {
    if (state.closed) throw ProcessError(describe(state) + " is closed");
}

void require_started(const ProcessState& state, const char* operation) {
    require_open(state);
    if (!state.started) throw ProcessError(std::string("cannot ") + operation + " " + describe(state) + ": it has not been started");
    require_creator(state, operation);
}

/// Blocks until the child may be reaped or `timeout` passes (negative: forever), without holding its mutex.
bool wait_exit(ProcessState& state, std::chrono::nanoseconds timeout) {
    int pidfd;
    pid_t pid;
    {
        std::lock_guard lock(state.mutex);
        try_reap_locked(state);
        if (state.exitcode) return true;
        pidfd = state.pidfd;
        pid = state.pid;
    }
    if (pidfd >= 0) {
        if (!poll_for(pidfd, POLLIN, timeout, state.name.c_str())) return false;
    } else if (timeout < std::chrono::nanoseconds(0)) {
        siginfo_t info{};
        while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) < 0) {
            if (errno != EINTR) throw_os_error("waitid", state.name);
        }
    } else {
        // Without pidfds, poll the child with a growing pause, bounded by the deadline.
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        auto pause = std::chrono::microseconds(50);
        for (;;) {
            {
                std::lock_guard lock(state.mutex);
                try_reap_locked(state);
                if (state.exitcode) return true;
            }
            auto now = std::chrono::steady_clock::now();
            if (now >= deadline) return false;
            std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(pause, deadline - now));
            pause = std::min(pause * 2, std::chrono::microseconds(10'000));
        }
    }
    std::lock_guard lock(state.mutex);
    try_reap_locked(state);
    return state.exitcode.has_value();
}

std::string demangle(const char* mangled) {
    int status = 0;
    std::unique_ptr<char, decltype(&std::free)> readable(abi::__cxa_demangle(mangled, nullptr, nullptr, &status),
                                                         &std::free);
    return status == 0 && readable ? std::string(readable.get()) : std::string(mangled);
}

}  // namespace

int open_pidfd(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd >= 0) return fd;
#endif
    return -1;  // older kernels: join falls back to polling waitid
}

ProcessState::~ProcessState() {
    if (pidfd >= 0) ::close(pidfd);
}

Identity& self() { return runtime().identity; }

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
StartMethod default_start_method() { return runtime().start_method.value_or(StartMethod::fork); }
void set_default_start_method_in_child(StartMethod method) { runtime().start_method = method; }

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
        if (child->pidfd >= 0) ::close(child->pidfd);
        child->pidfd = -1;
        rt.inherited.push_back(std::move(child));
    }
    rt.children.clear();
    rt.child_counter = 0;
    rt.identity = identity;
}

void try_reap_locked(ProcessState& state) {
    if (state.exitcode || !state.started || state.pid <= 0) return;
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

void exit_cleanup() noexcept {
    try {
        auto children = live_children();
        for (auto& child : children) {
            std::lock_guard lock(child->mutex);
            if (child->daemon && !child->exitcode && child->creator == ::getpid()) ::kill(child->pid, SIGTERM);
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

}  // namespace detail

using detail::describe;
using detail::ProcessState;
using detail::require_creator;
using detail::require_open;
using detail::require_started;

std::string_view to_string(StartMethod method) noexcept {
    return method == StartMethod::spawn ? "spawn" : "fork";
}

StartMethod parse_start_method(std::string_view name) {
    if (name == "fork") return StartMethod::fork;
    if (name == "spawn") return StartMethod::spawn;
    throw ValueError("unknown start method '" + std::string(name) + "' (choose fork or spawn)");
}

void set_start_method(StartMethod method, bool force) {
    auto& rt = detail::runtime();
    if (rt.start_method && !force)
        throw Error("set_start_method: the start method is already set to " + std::string(to_string(*rt.start_method)) +
                    " (pass force = true to change it)");
    rt.start_method = method;
}

void set_start_method(std::string_view method, bool force) { set_start_method(parse_start_method(method), force); }

StartMethod get_start_method() { return detail::default_start_method(); }

std::vector<std::string> get_all_start_methods() { return {"fork", "spawn"}; }

bool ProcessInfo::is_alive() const {
    if (pid_ == ::getpid()) return true;
    // A parent that died leaves us reparented, which is more reliable than kill(pid, 0) once pids recycle.
    if (pid_ == detail::self().parent_pid) return ::getppid() == pid_;
    return ::kill(pid_, 0) == 0 || errno == EPERM;
}

ProcessInfo current_process() { return {detail::self().name, ::getpid()}; }

std::optional<ProcessInfo> parent_process() {
    const auto& identity = detail::self();
    if (identity.parent_pid == 0) return std::nullopt;
    return ProcessInfo(identity.parent_name, identity.parent_pid);
}

std::vector<Process> active_children() {
    std::vector<Process> handles;
    for (auto& state : detail::live_children()) handles.push_back(Process(std::move(state)));
    return handles;
}

int cpu_count() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
    return static_cast<int>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
}

Process::Process(ProcessOptions options, std::unique_ptr<detail::Target> target)
    : state_(std::make_shared<ProcessState>()) {
    auto [identity, default_name] = detail::next_child_identity();
    state_->identity = std::move(identity);
    state_->name = options.name.empty() ? std::move(default_name) : std::move(options.name);
    state_->daemon = options.daemon.value_or(detail::self().daemon);
    state_->requested_method = options.start_method;
    state_->target = std::move(target);
    state_->creator = ::getpid();
}

void Process::start() {
    auto& state = *state_;
    std::unique_lock lock(state.mutex);
    require_open(state);
    if (state.started) throw ProcessError("cannot start " + describe(state) + " twice");
    require_creator(state, "start");
    state.method = state.requested_method.value_or(detail::default_start_method());
    (void)detail::live_children();  // reap children that ended, as Python does on every start
    detail::ensure_exit_cleanup_registered();

    // Flush buffered output first: under fork it would be written twice, under spawn after the child's.
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    if (state.method == StartMethod::spawn) {
        if (auto problem = state.target->spawn_problem(); !problem.empty())
            throw ProcessError("cannot start " + describe(state) + " with spawn: " + problem);
        if (!detail::init_called())
            throw ProcessError("cannot start " + describe(state) +
                               " with spawn: call ipc::init(argc, argv) at the top of main() first");
        detail::spawn_child(state);
    } else {
        detail::Identity child{state.name, state.identity, state.daemon, ::getpid(), detail::self().name};
        pid_t pid;
        {
            // Held across fork() so that the child inherits both registries in a consistent state.
            std::scoped_lock registries(detail::children_mutex(), detail::endpoint_registry_mutex());
            pid = ::fork();
            if (pid == 0) {
                detail::become_child(child);
                detail::forget_endpoints_after_fork();
                state.target->forked(true, 0);
                // The registry locks and this state's lock were taken by the forking thread; the
                // child must not keep them held.
                detail::children_mutex().unlock();
                detail::endpoint_registry_mutex().unlock();
                lock.unlock();
                detail::exit_forked_child(detail::run_target(*state.target));
            }
            // The child holds the channel ends passed to it; register it before anyone can look.
            if (pid > 0) state.target->forked(false, static_cast<std::uint32_t>(pid));
        }
        if (pid < 0) throw_os_error("fork", state.name);
        state.pid = pid;
    }
    if (state.pidfd < 0) state.pidfd = detail::open_pidfd(state.pid);
    state.started = true;
    detail::register_child(state_);
}

void Process::join() { join_for(std::chrono::nanoseconds(-1)); }

bool Process::join_for(std::chrono::nanoseconds timeout) {
    {
        std::lock_guard lock(state_->mutex);
        detail::require_started(*state_, "join");
    }
    // Internally a negative timeout means "forever"; join() is the only caller that wants that.
    const bool ended = detail::wait_exit(*state_, timeout);
    if (ended) detail::forget_child(*state_);  // so the pidfd goes with the last handle
    return ended;
}

bool Process::is_alive() { return !exitcode() && state_->started && state_->creator == ::getpid(); }

std::optional<pid_t> Process::pid() const {
    std::lock_guard lock(state_->mutex);
    if (!state_->started) return std::nullopt;
    return state_->pid;
}

std::optional<int> Process::exitcode() {
    std::optional<int> code;
    {
        std::lock_guard lock(state_->mutex);
        require_open(*state_);
        if (state_->started && state_->creator == ::getpid()) detail::try_reap_locked(*state_);
        code = state_->exitcode;
    }
    if (code) detail::forget_child(*state_);
    return code;
}

namespace {
void send_signal(ProcessState& state, int signal, const char* operation) {
    std::lock_guard lock(state.mutex);
    require_started(state, operation);
    detail::try_reap_locked(state);
    if (state.exitcode) return;  // already ended: as in Python, nothing to do
    // Unreaped, so the pid cannot have been reused.
    if (::kill(state.pid, signal) < 0 && errno != ESRCH) throw_os_error(operation, state.name);
}
}  // namespace

void Process::terminate() { send_signal(*state_, SIGTERM, "terminate"); }
void Process::kill() { send_signal(*state_, SIGKILL, "kill"); }

void Process::close() {
    std::lock_guard lock(state_->mutex);
    if (state_->closed) return;
    if (state_->started && state_->creator == ::getpid()) {
        detail::try_reap_locked(*state_);
        if (!state_->exitcode)
            throw ProcessError("cannot close " + describe(*state_) + ": it is still running (join or terminate it first)");
    }
    if (state_->pidfd >= 0) ::close(state_->pidfd);
    state_->pidfd = -1;
    state_->target.reset();
    state_->closed = true;
}

const std::string& Process::name() const { return state_->name; }

void Process::set_name(std::string name) {
    std::lock_guard lock(state_->mutex);
    state_->name = std::move(name);
}

bool Process::daemon() const { return state_->daemon; }

void Process::set_daemon(bool daemon) {
    std::lock_guard lock(state_->mutex);
    if (state_->started) throw ProcessError("cannot change daemon of " + describe(*state_) + ": it has been started");
    state_->daemon = daemon;
}

StartMethod Process::start_method() const {
    std::lock_guard lock(state_->mutex);
    return state_->started ? state_->method : state_->requested_method.value_or(detail::default_start_method());
}

int Process::sentinel() const {
    std::lock_guard lock(state_->mutex);
    return state_->pidfd;
}

}  // namespace ipc
