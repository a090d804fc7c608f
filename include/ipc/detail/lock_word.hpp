// ipc/detail/lock_word.hpp — the robust lock under Lock, RLock and every internal mutex: a futex word
// holding the owner's id, and waiters that take it over when that owner died holding it.
#pragma once

#include <atomic>
#include <cstdint>

#include "ipc/detail/deadline.hpp"

namespace ipc::detail {

struct alignas(64) LockWord {
    static constexpr std::uint32_t waiters_bit = 1u << 31;
    /// 0 when free; otherwise the owner's pid (Lock) or tid (RLock), with waiters_bit when someone sleeps.
    std::atomic<std::uint32_t> state{0};
    /// RLock recursion depth; only the owner reads or writes it.
    std::uint32_t depth = 0;
    /// The owner's birth (see Birth in shm/liveness.hpp), so a new process given a dead owner's id
    /// is not taken for it; 0 while not known (written right after the lock is taken, cleared
    /// right before it is freed).
    std::atomic<std::uint32_t> owner_birth{0};
    /// Whose birth owner_birth is, written after it. A lock taken over from another holder keeps
    /// that holder's birth until the new one records its own: a look in between must not judge the
    /// new holder by it (it would pass for dead, and a third waiter would take the lock from it).
    std::atomic<std::uint32_t> birth_owner{0};
};

enum class Acquired { yes, timed_out, owner_died };

/// Takes the lock for `owner` (this thread's tid or this process's pid). Spins briefly, then sleeps;
/// while it sleeps it looks now and then whether the holder died, and then takes the lock over
/// (owner_died). On owner_died, `dead_owner` (when given) receives the id of the holder that died.
Acquired acquire_lock(LockWord& word, std::uint32_t owner, bool block, const Deadline& deadline,
                      std::uint32_t* dead_owner = nullptr);
/// Frees the lock whoever holds it; false when it was not held.
bool release_lock(LockWord& word) noexcept;
[[nodiscard]] inline std::uint32_t lock_owner(const LockWord& word) noexcept {
    return word.state.load(std::memory_order_relaxed) & ~LockWord::waiters_bit;
}

}  // namespace ipc::detail
