// process/launch.hpp — the start methods, one launcher each (as CPython's popen_fork.py and
// popen_spawn_posix.py), and what every child runs between its start and its exit.
#pragma once

#include <mutex>

#include "process/registry.hpp"

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

/// Runs the target in the child and returns its exit code; an exception becomes 1 and a line on
/// stderr naming the process, the exception type and what().
int run_target(Runnable& target) noexcept;
/// Flushes stdio, cleans up the child's own children and ends a forked child without running the
/// parent's atexit handlers or static destructors.
[[noreturn]] void exit_forked_child(int code) noexcept;

}  // namespace ipc::detail
