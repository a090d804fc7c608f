// tests/fuzz/fuzz_segment_header.cpp — libFuzzer target for the checks a process makes when it opens
// a shared-memory object another process made: the input becomes the object's file (in a private
// IPC_SHM_DIR), opened with Segment::open_any, Segment::open as a few kinds and SharedMemory.
// Opening may fail only with an ipc::Error; what opens must keep its payload inside the mapping.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "ipc/detail/segment.hpp"
#include "ipc/error.hpp"
#include "ipc/shared_memory.hpp"
#include "shm/segment_header.hpp"

namespace {

using ipc::detail::Kind;
using ipc::detail::Segment;
using ipc::detail::SegmentHeader;

const std::string name = "fuzz-segment";

void write_object(const std::vector<std::byte>& bytes) {
    const std::string path = ipc::fuzz::use_private_shm_dir() + "/" + name;
    const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 || ::fchmod(fd, 0600) != 0) std::abort();
    if (!bytes.empty() && ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) std::abort();
    ::close(fd);
}

/// Reads the payload's first and last bytes and the bytes after `offset`: outside the mapping, ASan
/// or a SIGSEGV reports it.
void touch(const Segment& segment, std::size_t offset) {
    [[maybe_unused]] volatile std::byte sink{};
    const auto payload = segment.payload();
    if (!payload.empty()) {
        sink = payload.front();
        sink = payload.back();
    }
    (void)segment.kind();
    try {
        const auto rest = segment.payload_after(offset, "fuzz");
        if (!rest.empty()) sink = rest.back();
    } catch (const ipc::Error&) {
    }
}

template <class Open>
void try_open(Open open, std::size_t offset) {
    try {
        const std::shared_ptr<Segment> segment = open();
        touch(*segment, offset);
    } catch (const ipc::Error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    ipc::fuzz::use_private_shm_dir();
    return 0;
}

// The first byte steers: bit 0 writes the right magic and version over the input's (so most inputs
// reach the later checks), bits 1-7 pick the offset asked of payload_after. The rest is the file.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t steer = data[0];
    std::vector<std::byte> file(reinterpret_cast<const std::byte*>(data + 1), reinterpret_cast<const std::byte*>(data + size));
    // The opener waits up to 5 s for a file smaller than a header to grow, and for a header whose
    // state is not ready: a creator may still be writing it. Both waits are tested on their own
    // (tests/test_segments.cpp) and would make every such input a 5-second one here, so the file
    // is always at least a header and its state ready.
    if (file.size() < sizeof(SegmentHeader)) file.resize(sizeof(SegmentHeader));
    if (steer & 1) {
        const auto magic = ipc::detail::segment_magic;
        const auto version = ipc::detail::segment_version;
        std::memcpy(file.data() + offsetof(SegmentHeader, magic), &magic, sizeof magic);
        std::memcpy(file.data() + offsetof(SegmentHeader, version), &version, sizeof version);
    }
    const auto ready = ipc::detail::segment_ready;
    std::memcpy(file.data() + offsetof(SegmentHeader, state), &ready, sizeof ready);
    write_object(file);

    const std::size_t offset = static_cast<std::size_t>(steer >> 1) * 8;
    try_open([] { return Segment::open_any(name); }, offset);
    try_open([] { return Segment::open(name, Kind::shared_memory, {}); }, offset);
    try_open([] { return Segment::open(name, Kind::value, ipc::detail::ElementType::of<int>()); }, offset);
    try_open([] { return Segment::open(name, Kind::queue, ipc::detail::ElementType::of<std::string>()); }, offset);
    try_open([] { return Segment::open(name, Kind::pipe, {}); }, offset);
    try {
        ipc::SharedMemory block(name);
        volatile std::size_t sink = block.size();
        if (sink != 0) sink = static_cast<std::size_t>(block.buf().back());
    } catch (const ipc::Error&) {
    }
    return 0;
}
