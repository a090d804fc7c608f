// ipc/detail/wait.hpp — waiting on a 32-bit word in shared memory: a short spin, then futex sleep.
// Every wait takes a Deadline, so any blocked call can end by its timeout.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <thread>

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

/// How long a waiter spins before it sleeps: waking a sleeping process on another CPU costs ≈45 µs
/// here, so a brief spin turns most hand-offs into sub-µs ones, and an idle waiter soon sleeps.
inline constexpr auto spin_budget = std::chrono::microseconds(20);

/// Spins until `ready()` is true or the budget runs out; returns the last `ready()`. After a first
/// burst it yields now and then: when the peer shares this CPU, spinning alone would only delay it.
template <class Ready>
bool spin_until(Ready&& ready, std::chrono::nanoseconds budget = spin_budget) {
    constexpr int burst = 64;
    for (int i = 0; i < burst; ++i) {
        if (ready()) return true;
        cpu_relax();
    }
    const auto until = std::chrono::steady_clock::now() + budget;
    for (;;) {
        for (int i = 0; i < burst; ++i) {
            if (ready()) return true;
            cpu_relax();
        }
        if (std::chrono::steady_clock::now() >= until) return ready();
        std::this_thread::yield();
    }
}

/// Sleeps while `word == expected`, until woken or `deadline`. Returns false only on timeout;
/// a wake-up, a signal or a changed word return true, and the caller checks its condition again.
bool futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, const Deadline& deadline);
/// Wakes up to `count` processes sleeping on `word`.
void futex_wake(const std::atomic<std::uint32_t>& word, int count = INT_MAX) noexcept;

}  // namespace ipc::detail
