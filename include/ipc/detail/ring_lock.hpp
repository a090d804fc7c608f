// ipc/detail/ring_lock.hpp — the lock of one side of a message ring: robust as LockWord, and sticky, so
// a thread that sends (or receives) again and again keeps it between calls and pays no locked instruction.
#pragma once

#include <atomic>
#include <cstdint>

#include "ipc/detail/deadline.hpp"
#include "ipc/detail/fence.hpp"
#include "ipc/detail/lock_word.hpp"

namespace ipc::detail {

/// While only one thread uses a side of a ring, that thread keeps the lock when a call ends (it
/// "rests" on it), and its next call enters with two plain stores: a locked instruction per message
/// would wait for every store still on its way to the peer's CPU, and cost more than the message.
/// The first other thread that wants the lock makes it shared for good — a resting owner gives it
/// up at the end of its call, or is taken over between calls — so several senders share it as an
/// ordinary robust lock. A resting owner that died is taken over as a holder that died.
struct RingLock {
    static constexpr std::uint32_t resting_bit = 1u << 30;  // in word.state: the owner keeps it between calls
    // The modes only move forward: sticky, then switching (a newcomer announced itself and waits
    // for the heavy fence), then shared.
    static constexpr std::uint32_t sticky = 0, switching = 1, shared = 2;
    LockWord word;
    std::atomic<std::uint32_t> busy{0};  // the resting owner is inside a call
    std::atomic<std::uint32_t> mode{sticky};
};

/// The next call of the thread that rests on the lock: "busy", then a look whether the lock is
/// still sticky (see make_shared in ring/ring_lock.cpp). False: take the general way.
inline bool enter_resting(RingLock& lock, std::uint32_t me) noexcept {
    if (lock.word.state.load(std::memory_order_relaxed) != (me | RingLock::resting_bit)) return false;
    lock.busy.store(1, std::memory_order_relaxed);
    light_fence();
    if (lock.mode.load(std::memory_order_relaxed) == RingLock::sticky) return true;
    lock.busy.store(0, std::memory_order_relaxed);
    return false;
}

/// Whether the lock is held by a thread resting on it (no locked instruction frees it).
[[nodiscard]] inline bool held_resting(const RingLock& lock) noexcept {
    return (lock.word.state.load(std::memory_order_relaxed) & RingLock::resting_bit) != 0;
}

/// Takes the lock for this thread; without `block`, only when that needs no wait.
Acquired enter_ring_lock(RingLock& lock, bool block, const Deadline& deadline);
/// Ends the call that enter_ring_lock began (the lock may stay with this thread).
void exit_ring_lock_general(RingLock& lock) noexcept;
inline void exit_ring_lock(RingLock& lock) noexcept {
    if (lock.word.state.load(std::memory_order_relaxed) & RingLock::resting_bit) {
        // Release: whoever takes the lock over after seeing busy == 0 sees this call's writes.
        lock.busy.store(0, std::memory_order_release);
        light_fence();
        if (lock.mode.load(std::memory_order_relaxed) == RingLock::sticky) return;  // keep it for the next call
    }
    exit_ring_lock_general(lock);
}
/// Keeps the lock past the end of this thread's call as an ordinary hold, which the inline fast
/// paths do not enter: for a call that leaves its work unfinished (UnfinishedMessage).
void keep_ring_lock(RingLock& lock) noexcept;
/// Frees a lock that thread `owner` keeps inside a call it left unfinished (UnfinishedMessage), for
/// a handle that closes, whichever thread closes it.
void abandon_ring_lock(RingLock& lock, std::uint32_t owner) noexcept;
/// Gives up a lock this thread rests on (a closing end), so the next user finds it free.
void let_go_ring_lock(RingLock& lock) noexcept;
/// The holder's thread id, or 0.
[[nodiscard]] std::uint32_t ring_lock_owner(const RingLock& lock) noexcept;

}  // namespace ipc::detail
