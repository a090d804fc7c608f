#include "ipc/detail/lock_word.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "ipc/fd.hpp"

namespace ipc::detail {

namespace {
bool try_take(LockWord& word, std::uint32_t owner) noexcept {
    std::uint32_t expected = 0;
    return word.state.compare_exchange_strong(expected, owner, std::memory_order_acquire, std::memory_order_relaxed);
}
}  // namespace

namespace {
// A forked child has one thread, the one that forked: its cached ids were its parent's, and a
// child that kept its parent's thread id would pass for the parent as a lock owner.
[[maybe_unused]] const int fork_handler_installed =
    ::pthread_atfork(nullptr, nullptr, [] { thread_ids = {}; });
}  // namespace

ThreadIds& fetch_thread_ids() noexcept {
    thread_ids.tid = static_cast<std::uint32_t>(::gettid());
    thread_ids.pid = static_cast<std::uint32_t>(::getpid());
    return thread_ids;
}

bool id_alive(std::uint32_t id) noexcept {
    // /proc/<tid>/stat exists for every thread, listed or not; after the id's death it is gone, or
    // shows state Z (zombie) or X (dead) until the parent reaps it.
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%u/stat", id);
    Fd fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (!fd) return errno != ENOENT && errno != ESRCH;
    char text[512];
    ssize_t got = ::read(fd.get(), text, sizeof text - 1);
    if (got <= 0) return false;
    text[got] = '\0';
    const char* end_of_name = std::strrchr(text, ')');  // the command name may itself hold ')' or spaces
    if (!end_of_name || end_of_name[1] == '\0') return true;
    const char state = end_of_name[2];
    return state != 'Z' && state != 'X' && state != 'x';
}

Acquired acquire_lock(LockWord& word, std::uint32_t owner, bool block, const Deadline& deadline,
                      std::uint32_t* dead_owner) {
    if (try_take(word, owner)) return Acquired::yes;
    if (!block) return Acquired::timed_out;
    if (spin_until([&] { return word.state.load(std::memory_order_relaxed) == 0 && try_take(word, owner); }))
        return Acquired::yes;

    LockSleeper sleeper;
    for (;;) {
        std::uint32_t seen = word.state.load(std::memory_order_relaxed);
        if (seen == 0) {
            // Someone else may still sleep here, so keep the bit: the next release wakes them.
            if (word.state.compare_exchange_strong(seen, owner | LockWord::waiters_bit, std::memory_order_acquire))
                return Acquired::yes;
            continue;
        }
        const auto holder = seen & ~LockWord::waiters_bit;
        switch (sleeper.sleep(word.state, seen, holder, owner, deadline)) {
            case LockSleeper::Outcome::look_again: break;
            case LockSleeper::Outcome::timed_out: return Acquired::timed_out;
            case LockSleeper::Outcome::took_over:
                word.depth = 0;
                if (dead_owner) *dead_owner = holder;
                return Acquired::owner_died;
        }
    }
}

LockSleeper::Outcome LockSleeper::sleep(std::atomic<std::uint32_t>& state, std::uint32_t seen, std::uint32_t holder,
                                        std::uint32_t me, const Deadline& deadline) {
    constexpr auto last_liveness_check = std::chrono::milliseconds(200);
    if (!(seen & LockWord::waiters_bit)) {
        if (!state.compare_exchange_strong(seen, seen | LockWord::waiters_bit, std::memory_order_relaxed))
            return Outcome::look_again;
        seen |= LockWord::waiters_bit;
    }
    if (futex_wait(state, seen, deadline.or_sooner(check_after_))) return Outcome::look_again;
    if (deadline.expired()) return Outcome::timed_out;
    if (state.load(std::memory_order_relaxed) == seen && !id_alive(holder) &&
        state.compare_exchange_strong(seen, me | LockWord::waiters_bit, std::memory_order_acquire))
        return Outcome::took_over;
    check_after_ = std::min<std::chrono::nanoseconds>(check_after_ * 2, last_liveness_check);
    return Outcome::look_again;
}

bool release_lock(LockWord& word) noexcept {
    std::uint32_t seen = word.state.load(std::memory_order_relaxed);
    do {
        if (seen == 0) return false;
    } while (!word.state.compare_exchange_weak(seen, 0, std::memory_order_release, std::memory_order_relaxed));
    if (seen & LockWord::waiters_bit) futex_wake(word.state, 1);
    return true;
}

}  // namespace ipc::detail
