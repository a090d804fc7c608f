// shm/segment_header.hpp — the header at the start of every segment, checked on every open: what
// made it (magic, format version), what it holds (kind, element type) and how much (payload size).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ipc/detail/segment.hpp"

namespace ipc::detail {

inline constexpr std::uint64_t segment_magic = 0x3130474553435049ULL;  // the bytes "IPCSEG01"
inline constexpr std::uint32_t segment_version = 5;  // 5: padding records, loans and views in rings
inline constexpr std::uint32_t segment_ready = 1;

struct alignas(Segment::payload_alignment) SegmentHeader {
    std::uint64_t magic;
    std::uint32_t version;
    std::uint32_t kind;
    std::uint64_t type_tag;
    std::uint64_t type_size;
    std::uint64_t payload_size;
    char type_name[128];  // NUL-terminated by its creator; a reader bounds it all the same
    std::atomic<std::uint32_t> state;  // segment_ready, published last with release ordering
};

inline constexpr std::size_t segment_payload_offset = sizeof(SegmentHeader);
static_assert(segment_payload_offset % Segment::payload_alignment == 0);

}  // namespace ipc::detail
