// ipc/detail/evict.hpp — a receiver drops the ring lines of a small record it has read from every
// cache, so that the sender's write to them a lap later need not take them back from its CPU.
#pragma once

#include <cstdint>

#include "ipc/detail/ring.hpp"

namespace ipc::detail {

/// True where the CPU has CLFLUSHOPT (x86-64 since Skylake and Zen), which flushes a line without
/// waiting for it; elsewhere records stay where they are. Set when the library initialises: a
/// receive from another file's static constructor may run before and just not evict.
extern const bool lines_evictable;

/// The largest record evicted: 9 lines, a message of up to 560 bytes. (Measured: 256 B messages
/// 19 → 33 M msg/s, 512 B 3.7 → 17 M in medians of 10–12 runs; 768 B and 1 KiB a little slower
/// with eviction, their lines cost more to flush than the sender gains.)
inline constexpr std::uint64_t largest_evicted_record = 576;

/// Drops the lines of the record of `footprint` bytes at `position` from every cache.
///
/// Why: on the 2-vCPU VM the benchmarks run on, a stream of small messages between two processes
/// fell now and then into a state where the sender's every store waited (≈5–6 instead of 20–40 M
/// msg/s, for the whole stream), and so did a minimal ring with none of ipc's code — with a 1 MiB
/// ring in 8 of 25 runs, with a 16 MiB ring never, and with a receiver that flushed what it had
/// read never either. Lines the sender rewrites a lap later were still in the receiver's cache;
/// flushed, they come from memory, prefetched ahead of the sender. (64 B Pipe messages: 8 of 25
/// runs in that state without eviction, none of 25 with it, median 33 → 48 M msg/s.)
inline void evict_record(RingState& ring, std::uint64_t position, std::uint64_t footprint) noexcept {
#if defined(__x86_64__)
    if (!lines_evictable || footprint > largest_evicted_record) return;
    for (std::uint64_t line = 0; line < footprint; line += record_alignment)
        asm volatile("clflushopt %0" : : "m"(*(ring.data() + ((position + line) & (ring.capacity - 1)))));
#else
    (void)ring, (void)position, (void)footprint;
#endif
}

}  // namespace ipc::detail
