// shm/liveness.hpp — the one answer to "is process or thread X still there?" (for lock owners, ring
// lock owners and the holders of channel ends), and the one schedule on which waiters ask it.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace ipc::detail {

/// A process or thread is named for good by its id and its birth: the low 32 bits of its start time
/// in clock ticks since boot (never 0). A new process that was given a dead one's id has another
/// birth, so a lock or a slot that records both is never taken for held by the newcomer. 0 stands
/// for "not known": then only the id is checked.
///
/// Why not a pidfd: one opened when a check is due names whatever process has the id by then, so
/// it tells no more than the id; holding one per recorded owner would cost a descriptor in every
/// process for every lock and end it ever saw. The start time costs nothing to keep.
using Birth = std::uint32_t;

/// The birth of process or thread `id` now; 0 when none runs (gone, or a zombie).
Birth birth_of(std::uint32_t id) noexcept;
/// This thread's and this process's births, read once and cached (forgotten in a forked child).
Birth this_thread_birth() noexcept;
Birth this_process_birth() noexcept;

/// False when no process or thread `id` runs any more (gone, or a zombie), or when the one that
/// runs under that id is not the one born at `birth` (unless `birth` is 0).
bool alive(std::uint32_t id, Birth birth = 0) noexcept;

/// A holder recorded in one 64-bit word of shared memory (a channel end's slot): id and birth
/// change together, so no reader sees one holder's id with another's birth.
constexpr std::uint64_t pack_holder(std::uint32_t id, Birth birth) noexcept {
    return std::uint64_t{birth} << 32 | id;
}
constexpr std::uint32_t holder_id(std::uint64_t holder) noexcept { return static_cast<std::uint32_t>(holder); }
constexpr Birth holder_birth(std::uint64_t holder) noexcept { return static_cast<Birth>(holder >> 32); }
inline bool alive(std::uint64_t holder) noexcept { return alive(holder_id(holder), holder_birth(holder)); }

/// The schedule of every look that no event prompts (a peer that dies cannot say so; each look
/// reads /proc/ID/stat, a few microseconds):
/// - a waiter that sleeps looks `first_look` after it began, then at gaps that double up to
///   `longest_gap` (LookBackoff), so a long wait costs a few looks per second at most;
/// - a caller that never sleeps but comes often (a send, an event loop's receive) looks when
///   `throttle_gap` has passed since its last look (LookThrottle): half the longest gap, so an
///   event loop that comes back every `longest_gap` finds a look due each time.
inline constexpr auto first_look = std::chrono::milliseconds(10);
inline constexpr auto longest_gap = std::chrono::milliseconds(200);
inline constexpr auto throttle_gap = longest_gap / 2;

/// The sleeping waiter's side of the schedule: how long to sleep before the next look.
class LookBackoff {
public:
    /// The gap before the next look; each call doubles the one after, up to longest_gap.
    std::chrono::nanoseconds next() noexcept {
        const auto gap = gap_;
        gap_ = std::min<std::chrono::nanoseconds>(gap_ * 2, longest_gap);
        return gap;
    }
    /// The gap the next call to next() returns, without moving on.
    [[nodiscard]] std::chrono::nanoseconds peek() const noexcept { return gap_; }

private:
    std::chrono::nanoseconds gap_ = first_look;
};

/// The frequent caller's side: a look is due once throttle_gap has passed since the last one.
/// Threads may share one: relaxed atomics, so racing threads at worst both look.
class LookThrottle {
public:
    [[nodiscard]] bool due() const noexcept { return now() >= next_.load(std::memory_order_relaxed); }
    /// A look was made and found the peer alive: the next is due throttle_gap from now. (After a
    /// look that found it gone, the caller does not call this, so every later call looks again.)
    void looked() noexcept {
        next_.store(now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(throttle_gap).count(),
                    std::memory_order_relaxed);
    }

private:
    static std::chrono::steady_clock::rep now() noexcept {
        return std::chrono::steady_clock::now().time_since_epoch().count();
    }
    std::atomic<std::chrono::steady_clock::rep> next_{0};
};

}  // namespace ipc::detail
