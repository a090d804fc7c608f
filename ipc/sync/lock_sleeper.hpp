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

/// Records that `owner`, which holds `word`, was born at `birth`: a seqlock of one writer, so a
/// reader gets the birth together with the owner it belongs to.
inline void record_birth(LockWord& word, std::uint32_t owner, Birth birth) noexcept {
    word.birth_owner.store(0, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    word.owner_birth.store(birth, std::memory_order_relaxed);
    word.birth_owner.store(owner, std::memory_order_release);
}
/// Right after `owner` (this thread, or this process) took `word`: records its birth.
void record_owner_birth(LockWord& word, std::uint32_t owner) noexcept;
/// Right before the owner frees `word`: forgets its birth.
inline void forget_owner_birth(LockWord& word) noexcept { record_birth(word, 0, 0); }
/// The birth recorded for `holder`, or 0 when none is (yet) recorded for it.
inline Birth recorded_birth(const LockWord& word, std::uint32_t holder) noexcept {
    const auto owner = word.birth_owner.load(std::memory_order_acquire);
    const auto birth = word.owner_birth.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    return owner == holder && word.birth_owner.load(std::memory_order_relaxed) == holder ? birth : 0;
}
/// Whether the holder `holder` seen in `word` still lives: by its birth when recorded, else by
/// its id alone (it took the lock a moment ago).
inline bool holder_alive(const LockWord& word, std::uint32_t holder) noexcept {
    return alive(holder, recorded_birth(word, holder));
}

}  // namespace ipc::detail
