// tests/fuzz/fuzz_support.hpp — what several fuzz targets share: a private folder for shared-memory
// objects (so a run never touches /dev/shm) and a ring in ordinary memory.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <string>

#include "ipc/detail/ring.hpp"

namespace ipc::fuzz {

/// Makes IPC_SHM_DIR a fresh folder of this process, removed at exit: the library then creates and
/// opens its segments there. Call once, from LLVMFuzzerInitialize.
inline const std::string& use_private_shm_dir() {
    static const std::string folder = [] {
        std::string pattern = (std::filesystem::temp_directory_path() / "ipc-fuzz-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) std::abort();
        ::setenv("IPC_SHM_DIR", pattern.c_str(), 1);
        std::atexit([] { std::filesystem::remove_all(std::getenv("IPC_SHM_DIR")); });
        return pattern;
    }();
    return folder;
}

/// A RingState and its data in ordinary memory, aligned as in a segment; reset() makes it new.
class MemoryRing {
public:
    explicit MemoryRing(std::uint64_t capacity)
        : capacity_(capacity),
          storage_(static_cast<std::byte*>(::operator new(ipc::detail::RingState::size_for(capacity), std::align_val_t{64}))) {}
    ~MemoryRing() { ::operator delete(storage_, std::align_val_t{64}); }
    MemoryRing(const MemoryRing&) = delete;
    MemoryRing& operator=(const MemoryRing&) = delete;

    /// A freshly constructed state (every field zero, locks free) and zeroed data.
    ipc::detail::RingState& reset() {
        auto* state = new (storage_) ipc::detail::RingState(capacity_, 0);
        std::memset(state->data(), 0, capacity_);
        return *state;
    }
    [[nodiscard]] ipc::detail::RingState& state() const { return *std::launder(reinterpret_cast<ipc::detail::RingState*>(storage_)); }
    [[nodiscard]] std::uint64_t capacity() const noexcept { return capacity_; }

private:
    std::uint64_t capacity_;
    std::byte* storage_;
};

}  // namespace ipc::fuzz
