// sync/lock_sleeper.hpp — one sleep of a waiter on a held lock word, shared by the robust locks
// and the ring locks: sleep a slice, then look whether the holder still lives and take over if not.
#pragma once

#include <atomic>
#include <cstdint>

#include "ipc/detail/lock_word.hpp"
#include "shm/liveness.hpp"

namespace ipc::detail {

/// Raises the waiters bit, sleeps until woken or the next liveness look is due (LookBackoff), and
/// then looks whether the holder still lives; a dead holder is taken over from exactly the state
/// seen, so two waiters that both noticed cannot both win.
class LockSleeper {
public:
    enum class Outcome { look_again, timed_out, took_over };
    /// `seen`: the state this waiter saw in `word`, held by `holder`; on took_over the state is
    /// `me` | waiters_bit, and the caller records its own birth.
    Outcome sleep(LockWord& word, std::uint32_t seen, std::uint32_t holder, std::uint32_t me, const Deadline& deadline);

private:
    LookBackoff looks_;
};

/// Right after `owner` (this thread, or this process) took `word`: records its birth.
void record_owner_birth(LockWord& word, std::uint32_t owner) noexcept;
/// Right before the owner frees `word`: forgets its birth.
inline void forget_owner_birth(LockWord& word) noexcept { word.owner_birth.store(0, std::memory_order_relaxed); }
/// Whether the holder `holder` seen in `word` still lives (its birth as `word` records it).
inline bool holder_alive(const LockWord& word, std::uint32_t holder) noexcept {
    return alive(holder, word.owner_birth.load(std::memory_order_acquire));
}

}  // namespace ipc::detail
