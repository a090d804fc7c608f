// process/process.cpp — ipc::Process, the start-method settings and the questions Python's
// multiprocessing answers about processes (current_process, parent_process, active_children).
#include "ipc/process.hpp"

#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <system_error>

#include "process/launch.hpp"
#include "process/registry.hpp"
#include "shm/liveness.hpp"

namespace ipc {

namespace {

std::string describe(const detail::ProcessState& state) { return "process '" + state.name + "'"; }

void require_creator(const detail::ProcessState& state, const char* operation) {
    if (state.creator != ::getpid())
        throw ProcessError(std::string("cannot ") + operation + " " + describe(state) +
                           ": only the process that created it may (it is not a child of this process)");
}

void require_open(const detail::ProcessState& state) {
    if (state.closed) throw ValueError(describe(state) + " is closed");
}

/// The number of threads of this process, from /proc/self/task; 0 when it cannot be read.
std::size_t thread_count() {
    std::error_code error;
    std::size_t count = 0;
    for (std::filesystem::directory_iterator entry("/proc/self/task", error), end; !error && entry != end;
         entry.increment(error))
        ++count;
    return error ? 0 : count;
}

/// Python 3.12's warning: fork copies only the calling thread, so what another thread held (a
/// lock, the allocator's) stays held in the child. Once per process.
void warn_if_forking_threads(const detail::ProcessState& state) {
    static std::atomic<bool> warned{false};
    if (warned.load(std::memory_order_relaxed) || detail::fork_warning_suppressed()) return;
    const auto threads = thread_count();
    if (threads <= 1 || warned.exchange(true)) return;
    std::fprintf(stderr,
                 "ipc: warning: process '%s' (pid %d) has %zu threads and starts %s with fork; the child gets a "
                 "copy of the calling thread only, so a lock another thread holds now stays locked in the child. "
                 "Use the forkserver or spawn start method where that can happen. (Shown once.)\n",
                 detail::self().name.c_str(), static_cast<int>(::getpid()), threads, describe(state).c_str());
}

void require_started(const detail::ProcessState& state, const char* operation) {
    require_open(state);
    if (!state.started) throw ProcessError(std::string("cannot ") + operation + " " + describe(state) + ": it has not been started");
    require_creator(state, operation);
}

}  // namespace

using detail::ProcessState;

std::string_view to_string(StartMethod method) noexcept {
    switch (method) {
        case StartMethod::spawn: return "spawn";
        case StartMethod::forkserver: return "forkserver";
        case StartMethod::fork: break;
    }
    return "fork";
}

StartMethod parse_start_method(std::string_view name) {
    if (name == "fork") return StartMethod::fork;
    if (name == "spawn") return StartMethod::spawn;
    if (name == "forkserver") return StartMethod::forkserver;
    throw ValueError("unknown start method '" + std::string(name) + "' (choose fork, spawn or forkserver)");
}

void set_start_method(StartMethod method, bool force) {
    auto& chosen = detail::chosen_start_method();
    if (chosen && !force)
        throw Error("set_start_method: the start method is already set to " + std::string(to_string(*chosen)) +
                    " (pass force = true to change it)");
    chosen = method;
}

void set_start_method(std::string_view method, bool force) { set_start_method(parse_start_method(method), force); }

StartMethod get_start_method() { return detail::default_start_method(); }

std::vector<std::string> get_all_start_methods() { return {"fork", "spawn", "forkserver"}; }

bool ProcessInfo::is_alive() const {
    if (pid_ == ::getpid()) return true;
    // A parent that died leaves us reparented, which is more reliable than kill(pid, 0) once pids recycle.
    // A forkserver child's parent process is the server's client, not its parent in the kernel.
    if (pid_ == detail::self().parent_pid && detail::self().started_by != StartMethod::forkserver)
        return ::getppid() == pid_;
    return detail::alive(static_cast<std::uint32_t>(pid_));  // the one liveness check: a zombie is gone
}

ProcessInfo current_process() { return {detail::self().name, ::getpid(), detail::self().daemon}; }

std::vector<std::byte> ProcessInfo::authkey() const {
    // The parent's key is ours: a child inherits it.
    if (pid_ != ::getpid() && pid_ != detail::self().parent_pid)
        throw ValueError("authkey: process " + std::to_string(pid_) + " is neither this process nor its parent");
    return detail::current_authkey();
}

void ProcessInfo::set_authkey(std::vector<std::byte> key) const {
    if (pid_ != ::getpid())
        throw ValueError("set_authkey: only this process's own key can be set (not that of '" + name_ + "', pid " +
                         std::to_string(pid_) + ")");
    detail::set_current_authkey(std::move(key));
}

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

int cpu_count() { return static_cast<int>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN))); }

int process_cpu_count() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
    return cpu_count();
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
    if (state.method != StartMethod::fork) {
        const auto method = std::string(to_string(state.method));
        if (auto problem = state.target->spawn_problem(); !problem.empty())
            throw ProcessError("cannot start " + describe(state) + " with " + method + ": " + problem);
        if (!detail::init_called())
            throw ProcessError("cannot start " + describe(state) + " with " + method +
                               ": call ipc::init(argc, argv) at the top of main() first");
        if (state.method == StartMethod::spawn)
            detail::spawn_child(state);
        else
            detail::forkserver_child(state);
    } else {
        warn_if_forking_threads(state);
        detail::fork_child(state, lock);
    }
    if (state.pidfd < 0) state.pidfd = detail::open_pidfd(state.pid);
    state.started = true;
    detail::register_child(state_);
}

void Process::join() { join_for(std::chrono::nanoseconds(-1)); }

bool Process::join_for(std::chrono::nanoseconds timeout) {
    {
        std::lock_guard lock(state_->mutex);
        require_started(*state_, "join");
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
    detail::signal_child_locked(state, signal, operation);
}
}  // namespace

void Process::interrupt() { send_signal(*state_, SIGINT, "interrupt"); }
void Process::terminate() { send_signal(*state_, SIGTERM, "terminate"); }
void Process::kill() { send_signal(*state_, SIGKILL, "kill"); }

void Process::close() {
    std::lock_guard lock(state_->mutex);
    if (state_->closed) return;
    if (state_->started && state_->creator == ::getpid()) {
        detail::try_reap_locked(*state_);
        if (!state_->exitcode)
            throw ValueError("cannot close " + describe(*state_) + ": it is still running (join or terminate it first)");
    }
    state_->close_descriptors();
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
    require_open(*state_);
    if (!state_->started) throw ValueError("no sentinel for " + describe(*state_) + ": it has not been started");
    return state_->end_descriptor();
}

}  // namespace ipc
