// ipc/detail/wait.hpp — waiting on a 32-bit word in shared memory: a short spin, then futex sleep.
// Every wait takes a Deadline, so any blocked call can end by its timeout.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>

namespace ipc::detail {

/// A point on the monotonic clock, or never.
class Deadline {
public:
    static Deadline never() noexcept { return Deadline(); }
    /// A negative timeout counts as zero, as in Python.
    static Deadline after(std::chrono::nanoseconds timeout) noexcept {
        if (timeout < std::chrono::nanoseconds(0)) timeout = std::chrono::nanoseconds(0);
        Deadline deadline;
        deadline.at_ = std::chrono::steady_clock::now() + timeout;
        deadline.never_ = false;
        return deadline;
    }
    [[nodiscard]] bool is_never() const noexcept { return never_; }
    [[nodiscard]] bool expired() const noexcept { return !never_ && std::chrono::steady_clock::now() >= at_; }
    [[nodiscard]] std::chrono::steady_clock::time_point at() const noexcept { return at_; }
    /// The earlier of this deadline and `other`.
    [[nodiscard]] Deadline or_sooner(std::chrono::nanoseconds within) const noexcept {
        Deadline other = after(within);
        return never_ || other.at_ < at_ ? other : *this;
    }

private:
    Deadline() = default;
    std::chrono::steady_clock::time_point at_{};
    bool never_ = true;
};

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

/// Spins this many rounds (a few µs with `pause`) before sleeping: waking a sleeping process on
/// another CPU costs ≈45 µs here, so a brief spin turns most hand-offs into sub-µs ones.
inline constexpr int spin_rounds = 2000;

/// Spins until `ready()` is true or the rounds run out; returns the last `ready()`.
template <class Ready>
bool spin_until(Ready&& ready, int rounds = spin_rounds) {
    for (int i = 0; i < rounds; ++i) {
        if (ready()) return true;
        cpu_relax();
    }
    return ready();
}

/// Sleeps while `word == expected`, until woken or `deadline`. Returns false only on timeout;
/// a wake-up, a signal or a changed word return true, and the caller checks its condition again.
bool futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, const Deadline& deadline);
/// Wakes up to `count` processes sleeping on `word`.
void futex_wake(const std::atomic<std::uint32_t>& word, int count = INT_MAX) noexcept;

}  // namespace ipc::detail
