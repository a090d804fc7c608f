// process/task_channel.hpp — how a child that does not share its parent's memory (spawn,
// forkserver) gets its task: the parent sends who the child is and its target over a socket, with
// the descriptors its arguments hold, and waits for the child's ready or failed answer.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "process/registry.hpp"

namespace ipc::detail {

/// A child that has not decoded its task by then is stuck in its own static initialisation.
inline constexpr auto task_ready_timeout = std::chrono::seconds(60);

/// Sends `state`'s task over `channel` and waits for the child's answer, watching `pidfd` for its
/// end. Throws ProcessError naming the process and `method`: with the child's own reason when it
/// failed, with `describe_end()` ("it exited with code 3") when it ended before answering.
void hand_over_task(const ProcessState& state, StartMethod method, int channel, int pidfd,
                    const std::function<std::string()>& describe_end);

/// In the child: reads the task from `channel`, becomes the process it names (started by
/// `method`), answers, runs the target and exits.
[[noreturn]] void run_task_from(int channel, StartMethod method);

/// "it exited with code 3", "it was killed by signal 9 (Killed)" for a wait(2) status.
std::string describe_wait_status(int status);

}  // namespace ipc::detail
