// ipc/detail/lock_word.hpp — the robust lock under Lock, RLock and every internal mutex: a futex word
// holding the owner's id, and waiters that check, when a wait slice ends, whether that owner still lives.
#pragma once

#include <atomic>
#include <cstdint>

#include "ipc/detail/wait.hpp"

namespace ipc::detail {

struct alignas(64) LockWord {
    static constexpr std::uint32_t waiters_bit = 1u << 31;
    /// 0 when free; otherwise the owner's pid (Lock) or tid (RLock), with waiters_bit when someone sleeps.
    std::atomic<std::uint32_t> state{0};
    /// RLock recursion depth; only the owner reads or writes it.
    std::uint32_t depth = 0;
};

enum class Acquired { yes, timed_out, owner_died };

/// Takes the lock for `owner`. Spins briefly, then sleeps; while it sleeps it checks every few
/// tens of milliseconds whether the holder died, and then takes the lock over (owner_died).
/// On owner_died, `dead_owner` (when given) receives the id of the holder that died.
Acquired acquire_lock(LockWord& word, std::uint32_t owner, bool block, const Deadline& deadline,
                      std::uint32_t* dead_owner = nullptr);
/// One sleep of a waiter on a held lock, shared by acquire_lock and the ring locks: raises the
/// waiters bit, sleeps a slice, and when the slice ran out without a wake-up looks whether the
/// holder still lives; a dead holder is taken over from exactly the state seen, so two waiters
/// that both noticed cannot both win. The slices grow while the holder lives, so a lock held for
/// long costs its waiters a few wake-ups per second at most.
class LockSleeper {
public:
    enum class Outcome { look_again, timed_out, took_over };
    /// `seen`: the state this waiter saw, held by `holder`; on took_over it is `me` | waiters_bit.
    Outcome sleep(std::atomic<std::uint32_t>& state, std::uint32_t seen, std::uint32_t holder, std::uint32_t me,
                  const Deadline& deadline);

private:
    std::chrono::nanoseconds check_after_ = std::chrono::milliseconds(10);
};

/// Frees the lock whoever holds it; false when it was not held.
bool release_lock(LockWord& word) noexcept;
[[nodiscard]] inline std::uint32_t lock_owner(const LockWord& word) noexcept {
    return word.state.load(std::memory_order_relaxed) & ~LockWord::waiters_bit;
}
/// False when no process or thread `id` runs any more (gone, or a zombie).
bool id_alive(std::uint32_t id) noexcept;

/// This thread's ids, cached (a lock costs no system call); forgotten in a forked child.
struct ThreadIds {
    std::uint32_t tid = 0;
    std::uint32_t pid = 0;
};
inline constinit thread_local ThreadIds thread_ids{};
ThreadIds& fetch_thread_ids() noexcept;
inline std::uint32_t this_thread_id() noexcept { return thread_ids.tid ? thread_ids.tid : fetch_thread_ids().tid; }
inline std::uint32_t this_process_id() noexcept { return thread_ids.pid ? thread_ids.pid : fetch_thread_ids().pid; }

}  // namespace ipc::detail
