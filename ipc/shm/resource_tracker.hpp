// shm/resource_tracker.hpp — the safety net for SIGKILL, as Python's resource_tracker: a small
// process, in a session of its own, that removes the anonymous segments of creators that were killed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "shm/liveness.hpp"

namespace ipc::detail {

/// Registers an anonymous segment's name with the tracker, starting the tracker on first use.
void track_segment(const std::string& name) noexcept;
/// The name was removed by its owner; the tracker forgets it.
void untrack_segment(const std::string& name) noexcept;
/// Starts the tracker now (tests call it before counting descriptors).
void ensure_resource_tracker() noexcept;

/// A name for an anonymous segment: "ipc_" then the creator's and its tracker's ids and births,
/// then random digits, so that a tracker starting up can tell segments whose creator and tracker
/// are both gone (killed together, say) and remove them.
std::string anonymous_segment_name();

/// What anonymous_segment_name put into `name`; empty for any other name.
struct AnonymousName {
    std::uint32_t creator = 0;
    Birth creator_birth = 0;
    std::uint32_t tracker = 0;
    Birth tracker_birth = 0;
};
std::optional<AnonymousName> parse_anonymous_name(const std::string& name) noexcept;

}  // namespace ipc::detail
