// shm/segment_files.hpp — where named segments live: POSIX shared memory (/dev/shm), or the folder
// IPC_SHM_DIR names when it is set (a small tmpfs in a test, a per-job folder on a shared machine).
#pragma once

#include <sys/types.h>

#include <string>

namespace ipc::detail {

/// open(2) of segment `name` (shm_open's flags and mode); the descriptor, or -1 with errno set.
int open_segment_file(const std::string& name, int flags, mode_t mode) noexcept;
/// Removes segment `name`; 0, or -1 with errno set.
int unlink_segment_file(const std::string& name) noexcept;
/// Where segment `name` lives, for messages: "/dev/shm/name" or "$IPC_SHM_DIR/name".
std::string segment_file_path(const std::string& name);

}  // namespace ipc::detail
