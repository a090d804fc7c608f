// shm/resource_tracker.hpp — the safety net for SIGKILL, as Python's resource_tracker: a small
// process that removes the anonymous segments still registered once every process that could have.
#pragma once

#include <string>

namespace ipc::detail {

/// Registers an anonymous segment's name with the tracker, starting the tracker on first use.
void track_segment(const std::string& name) noexcept;
/// The name was removed by its owner; the tracker forgets it.
void untrack_segment(const std::string& name) noexcept;
/// Starts the tracker now (tests call it before counting descriptors).
void ensure_resource_tracker() noexcept;

}  // namespace ipc::detail
