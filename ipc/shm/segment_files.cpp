// shm/segment_files.cpp — shm_open and shm_unlink, or open and unlink in IPC_SHM_DIR.
#include "shm/segment_files.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>

namespace ipc::detail {

namespace {
/// The folder IPC_SHM_DIR names, or null for POSIX shared memory.
const char* segment_folder() noexcept {
    const char* folder = std::getenv("IPC_SHM_DIR");
    return folder && *folder ? folder : nullptr;
}
}  // namespace

int open_segment_file(const std::string& name, int flags, mode_t mode) noexcept {
    if (const char* folder = segment_folder()) return ::open((std::string(folder) + "/" + name).c_str(), flags, mode);
    return ::shm_open(("/" + name).c_str(), flags, mode);
}

int unlink_segment_file(const std::string& name) noexcept {
    if (const char* folder = segment_folder()) return ::unlink((std::string(folder) + "/" + name).c_str());
    return ::shm_unlink(("/" + name).c_str());
}

std::string segment_file_path(const std::string& name) {
    const char* folder = segment_folder();
    return std::string(folder ? folder : "/dev/shm") + "/" + name;
}

}  // namespace ipc::detail
