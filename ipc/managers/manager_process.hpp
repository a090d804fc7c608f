// managers/manager_process.hpp — how Manager and BaseManager end the manager process they started
// once it was told to stop: joined, else terminated, else killed, always reaped.
#pragma once

#include <optional>

#include "ipc/process.hpp"

namespace ipc::detail {

/// Waits a second for `process` to end, then SIGTERM and a second more, then SIGKILL; empties it.
void end_manager_process(std::optional<Process>& process);

}  // namespace ipc::detail
