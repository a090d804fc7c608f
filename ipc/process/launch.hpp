// process/launch.hpp — the start methods, one launcher each (as CPython's popen_fork.py,
// popen_spawn_posix.py and popen_forkserver.py), and what every child runs between its start and its exit.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

#include "process/registry.hpp"
#include "sys/fd.hpp"

namespace ipc::detail {

/// Starts `state` by fork: sets its pid, or throws. `lock` holds state.mutex; the child releases
/// its copy and never returns from here.
void fork_child(ProcessState& state, std::unique_lock<std::mutex>& lock);

/// Starts `state` by spawn: sets pid and pidfd, or throws with the child's own reason when it cannot run.
void spawn_child(ProcessState& state);
/// In a spawned child (ipc::init found the marker): read the task from the inherited descriptor,
/// run it, exit.
[[noreturn]] void run_spawned_child();
/// The argument that marks a spawned child's command line.
inline constexpr std::string_view spawn_marker = "--ipc-spawn";
/// Where a program started by spawn_program finds `child_end`.
inline constexpr int spawned_channel_fd = 3;
/// Runs this program afresh (/proc/self/exe) with `marker` as its only argument, `child_end` as
/// descriptor 3, stdio, and nothing else of ours; returns its pid. `what` names it in errors.
pid_t spawn_program(std::string_view marker, Fd child_end, const std::string& what);

/// Starts `state` by the forkserver (started, or restarted, here when needed): sets pid, pidfd
/// and status_fd, or throws with the child's own reason when it cannot run.
void forkserver_child(ProcessState& state);
/// In the forkserver (ipc::init found the marker): fork a child for each request, report its
/// pid and exit status, until every client has gone.
[[noreturn]] void run_forkserver();
/// The argument that marks the forkserver's command line.
inline constexpr std::string_view forkserver_marker = "--ipc-forkserver";
/// Guards this process's way to its forkserver; held across fork() like the registries.
std::mutex& forkserver_mutex();
/// The forkserver this process uses and its control socket (0 and -1 before the first use): the
/// tests leave them out of their counts of children and descriptors.
pid_t forkserver_pid() noexcept;
int forkserver_socket() noexcept;
/// Closes this process's way to its forkserver and, if this process started it, waits (5 s at
/// most, then kills) for it to leave and reaps it; the next forkserver start starts a new one.
void stop_forkserver();
/// Called when a child's status socket ended without a status: the server died. Reaps it (once it
/// has exited, 1 s at most) if this process started it, so that no zombie waits for the next start.
void reap_dead_forkserver() noexcept;
/// Adds a function ipc::init calls with the program's arguments, after the spawn and forkserver
/// markers were looked for (ipc::mpi starts MPI there, and its worker ranks never return).
void add_init_hook(void (*hook)(int argc, char** argv));

/// Runs the target in the child and returns its exit code; an exception becomes 1 and a line on
/// stderr naming the process, the exception type and what().
int run_target(Runnable& target) noexcept;
/// Flushes stdio, cleans up the child's own children and ends a forked child without running the
/// parent's atexit handlers or static destructors.
[[noreturn]] void exit_forked_child(int code) noexcept;

}  // namespace ipc::detail
