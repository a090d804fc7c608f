// ipc/detail/evict.hpp — drops lines of a circular buffer from every cache: a receiver evicts a small
// record it has read, so that the sender's write to those lines a lap later need not fetch them back.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ipc::detail {

/// True where the CPU has CLFLUSHOPT (x86-64 since Skylake and Zen), which flushes a line without
/// waiting for it; elsewhere nothing is evicted. Set when the library initialises: a receive from
/// another file's static constructor may run before and just not evict.
extern const bool lines_evictable;

/// The largest footprint evicted, in bytes (9 lines): beyond it, flushing costs the receiver more
/// than the sender gains (benchmarks/README.md has the measurements).
inline constexpr std::uint64_t largest_evicted_footprint = 576;
inline constexpr std::uint64_t evicted_line_size = 64;

/// Drops the lines of the `footprint` bytes at `position` of the circular buffer `data`, whose size
/// is `mask + 1` (a power of two), from every cache, when that is worth it.
inline void evict_lines(std::byte* data, std::uint64_t mask, std::uint64_t position, std::uint64_t footprint) noexcept {
#if defined(__x86_64__)
    if (!lines_evictable || footprint > largest_evicted_footprint) return;
    for (std::uint64_t line = 0; line < footprint; line += evicted_line_size)
        asm volatile("clflushopt %0" : : "m"(*(data + ((position + line) & mask))));
#else
    (void)data, (void)mask, (void)position, (void)footprint;
#endif
}

}  // namespace ipc::detail
