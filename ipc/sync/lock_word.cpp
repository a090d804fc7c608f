// sync/lock_word.cpp — the robust lock word: take, sleep, take over from a dead holder, free.
#include "ipc/detail/lock_word.hpp"

#include <algorithm>

#include "ipc/detail/thread_id.hpp"
#include "sync/lock_sleeper.hpp"
#include "sys/futex.hpp"
#include "sys/spin.hpp"

namespace ipc::detail {

namespace {
bool try_take(LockWord& word, std::uint32_t owner) noexcept {
    std::uint32_t expected = 0;
    if (!word.state.compare_exchange_strong(expected, owner, std::memory_order_acquire, std::memory_order_relaxed))
        return false;
    record_owner_birth(word, owner);
    return true;
}
}  // namespace

void record_owner_birth(LockWord& word, std::uint32_t owner) noexcept {
    record_birth(word, owner, owner == this_thread_id() ? this_thread_birth() : this_process_birth());
}

Acquired acquire_lock(LockWord& word, std::uint32_t owner, bool block, const Deadline& deadline,
                      std::uint32_t* dead_owner) {
    if (try_take(word, owner)) return Acquired::yes;
    if (!block) return Acquired::timed_out;
    if (spin_until(&word.state, [&] { return word.state.load(std::memory_order_relaxed) == 0 && try_take(word, owner); }))
        return Acquired::yes;

    LockSleeper sleeper;
    for (;;) {
        std::uint32_t seen = word.state.load(std::memory_order_relaxed);
        if (seen == 0) {
            // Someone else may still sleep here, so keep the bit: the next release wakes them.
            if (word.state.compare_exchange_strong(seen, owner | LockWord::waiters_bit, std::memory_order_acquire)) {
                record_owner_birth(word, owner);
                return Acquired::yes;
            }
            continue;
        }
        const auto holder = seen & ~LockWord::waiters_bit;
        switch (sleeper.sleep(word, seen, holder, owner, deadline)) {
            case LockSleeper::Outcome::look_again: break;
            case LockSleeper::Outcome::timed_out: return Acquired::timed_out;
            case LockSleeper::Outcome::took_over:
                record_owner_birth(word, owner);
                word.depth = 0;
                if (dead_owner) *dead_owner = holder;
                return Acquired::owner_died;
        }
    }
}

LockSleeper::Outcome LockSleeper::sleep(LockWord& word, std::uint32_t seen, std::uint32_t holder, std::uint32_t me,
                                        const Deadline& deadline) {
    auto& state = word.state;
    if (!(seen & LockWord::waiters_bit)) {
        if (!state.compare_exchange_strong(seen, seen | LockWord::waiters_bit, std::memory_order_relaxed))
            return Outcome::look_again;
        seen |= LockWord::waiters_bit;
    }
    if (futex_wait(state, seen, deadline.or_sooner(looks_.peek()))) return Outcome::look_again;
    if (deadline.expired()) return Outcome::timed_out;
    if (state.load(std::memory_order_acquire) == seen && !holder_alive(word, holder) &&
        state.compare_exchange_strong(seen, me | LockWord::waiters_bit, std::memory_order_acquire))
        return Outcome::took_over;
    looks_.next();
    return Outcome::look_again;
}

bool release_lock(LockWord& word) noexcept {
    std::uint32_t seen = word.state.load(std::memory_order_relaxed);
    if (seen == 0) return false;
    forget_owner_birth(word);
    do {
        if (seen == 0) return false;
    } while (!word.state.compare_exchange_weak(seen, 0, std::memory_order_release, std::memory_order_relaxed));
    if (seen & LockWord::waiters_bit) futex_wake(word.state, 1);
    return true;
}

}  // namespace ipc::detail
