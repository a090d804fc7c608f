// ring/ring_lock.cpp — the sticky ring lock's slow paths: taking it, sharing it, taking it over.
#include "ipc/detail/ring_lock.hpp"

#include "ipc/detail/thread_id.hpp"
#include "sync/lock_sleeper.hpp"
#include "sys/futex.hpp"
#include "sys/spin.hpp"

namespace ipc::detail {

namespace {

constexpr std::uint32_t waiters_bit = LockWord::waiters_bit;
constexpr std::uint32_t resting_bit = RingLock::resting_bit;
constexpr std::uint32_t id_mask = ~(waiters_bit | resting_bit);

constexpr std::uint32_t sticky = RingLock::sticky, switching = RingLock::switching, shared = RingLock::shared;

/// The handshake with a resting owner, which enters by "busy = 1; light fence; mode still sticky?":
/// after the heavy fence, either its busy flag is visible here, or its look at the mode sees this
/// change and it does not enter as a resting owner.
void make_shared(RingLock& lock) noexcept {
    if (lock.mode.load(std::memory_order_acquire) == shared) return;
    std::uint32_t expected = sticky;
    lock.mode.compare_exchange_strong(expected, switching, std::memory_order_seq_cst);
    heavy_fence();
    lock.mode.store(shared, std::memory_order_seq_cst);
}

/// Turns this thread's resting hold into an ordinary one; false when someone took the lock over.
bool stop_resting(RingLock& lock, std::uint32_t me) noexcept {
    auto seen = lock.word.state.load(std::memory_order_relaxed);
    while ((seen & id_mask) == me && (seen & resting_bit)) {
        if (lock.word.state.compare_exchange_weak(seen, seen & ~resting_bit, std::memory_order_acq_rel,
                                                  std::memory_order_relaxed)) {
            lock.busy.store(0, std::memory_order_relaxed);
            return true;
        }
    }
    return false;
}

/// Frees the lock if this thread still holds it (a resting hold may have been taken over).
void release_if_mine(RingLock& lock, std::uint32_t me) noexcept {
    auto seen = lock.word.state.load(std::memory_order_relaxed);
    if ((seen & id_mask) == me) forget_owner_birth(lock.word);
    while ((seen & id_mask) == me) {
        if (lock.word.state.compare_exchange_weak(seen, 0, std::memory_order_release, std::memory_order_relaxed)) {
            if (seen & waiters_bit) futex_wake(lock.word.state, 1);
            return;
        }
    }
}

/// Begins a resting hold just taken with resting_bit: the same handshake as the fast path.
bool begin_resting(RingLock& lock, std::uint32_t me) noexcept {
    lock.busy.store(1, std::memory_order_relaxed);
    light_fence();
    if (lock.mode.load(std::memory_order_relaxed) == sticky) return true;
    if (stop_resting(lock, me)) return true;
    lock.busy.store(0, std::memory_order_relaxed);
    return false;
}

}  // namespace

std::uint32_t ring_lock_owner(const RingLock& lock) noexcept {
    return lock.word.state.load(std::memory_order_relaxed) & id_mask;
}

Acquired enter_ring_lock(RingLock& lock, bool block, const Deadline& deadline) {
    const auto me = this_thread_id();
    auto& state = lock.word.state;
    if (enter_resting(lock, me)) return Acquired::yes;

    bool slept = false, spun = false;
    LockSleeper sleeper;
    for (;;) {
        auto seen = state.load(std::memory_order_acquire);
        if (seen == 0) {
            const bool rest = lock.mode.load(std::memory_order_relaxed) == sticky;
            // After a sleep, keep the waiters bit: someone else may still sleep here.
            const auto desired = me | (rest ? resting_bit : 0) | (slept ? waiters_bit : 0);
            if (!state.compare_exchange_strong(seen, desired, std::memory_order_acquire, std::memory_order_relaxed))
                continue;
            record_owner_birth(lock.word, me);
            if (!rest || begin_resting(lock, me)) return Acquired::yes;
            continue;
        }
        const auto owner = seen & id_mask;
        if (seen & resting_bit) {
            if (owner == me) {  // ours, but the lock is going shared: hold it the ordinary way
                if (stop_resting(lock, me)) return Acquired::yes;
                continue;
            }
            if (!holder_alive(lock.word, owner)) {
                // Its thread is gone; inside a call (busy) it left the ring half-done.
                const bool died_inside = lock.busy.load(std::memory_order_acquire) != 0;
                if (state.compare_exchange_strong(seen, me | (seen & waiters_bit), std::memory_order_acquire)) {
                    record_owner_birth(lock.word, me);
                    lock.busy.store(0, std::memory_order_relaxed);
                    return died_inside ? Acquired::owner_died : Acquired::yes;
                }
                continue;
            }
            make_shared(lock);
            if (lock.busy.load(std::memory_order_acquire) == 0) {
                // Between two calls: take it over (the owner's next call sees the shared mode).
                if (state.compare_exchange_strong(seen, me | (seen & waiters_bit), std::memory_order_acquire)) {
                    record_owner_birth(lock.word, me);
                    return Acquired::yes;
                }
                continue;
            }
            // Inside a call: it gives the lock back when the call ends, as it sees the mode.
        }
        if (!block) return Acquired::timed_out;
        if (!spun) {
            spun = true;
            if (spin_until(&state, [&] { return state.load(std::memory_order_relaxed) != seen; })) continue;
        }
        slept = true;
        switch (sleeper.sleep(lock.word, seen, owner, me, deadline)) {
            case LockSleeper::Outcome::look_again: break;
            case LockSleeper::Outcome::timed_out: return Acquired::timed_out;
            case LockSleeper::Outcome::took_over:
                record_owner_birth(lock.word, me);
                lock.busy.store(0, std::memory_order_relaxed);
                return Acquired::owner_died;
        }
    }
}

void exit_ring_lock_general(RingLock& lock) noexcept { release_if_mine(lock, this_thread_id()); }

void keep_ring_lock(RingLock& lock) noexcept { (void)stop_resting(lock, this_thread_id()); }

void abandon_ring_lock(RingLock& lock, std::uint32_t owner) noexcept {
    auto seen = lock.word.state.load(std::memory_order_relaxed);
    if ((seen & id_mask) != owner) return;
    forget_owner_birth(lock.word);
    lock.busy.store(0, std::memory_order_relaxed);
    while ((seen & id_mask) == owner) {
        if (lock.word.state.compare_exchange_weak(seen, 0, std::memory_order_release, std::memory_order_relaxed)) {
            if (seen & waiters_bit) futex_wake(lock.word.state, 1);
            return;
        }
    }
}

void let_go_ring_lock(RingLock& lock) noexcept {
    const auto me = this_thread_id();
    const auto seen = lock.word.state.load(std::memory_order_relaxed);
    if ((seen & resting_bit) && (seen & id_mask) == me && lock.busy.load(std::memory_order_relaxed) == 0)
        release_if_mine(lock, me);
}

}  // namespace ipc::detail
