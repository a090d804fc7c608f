// sys/spin.hpp — the short spin every wait makes before it sleeps: waking a sleeping process on
// another CPU costs tens of microseconds, so a brief spin turns most hand-offs into sub-µs ones.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace ipc::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

/// How long a waiter spins before it sleeps; an idle waiter soon sleeps.
inline constexpr auto spin_budget = std::chrono::microseconds(20);

/// Whether more threads are runnable than there are CPUs (/proc/loadavg, looked at every few ms).
bool cpus_oversubscribed() noexcept;

/// How this thread's last spins on one word went. Spins that keep missing on a machine with more
/// runnable threads than CPUs mean the peer is not running beside us; most often the scheduler has
/// put it on our own CPU, next to a busy process, and there a spin only holds the CPU the peer
/// needs. Such a waiter sleeps at once, and on every `probe_every`th wait makes a long spin, to
/// notice when spinning pays again. On a machine with a CPU to spare it spins as usual: sleeping
/// at once there keeps two peers that wake each other on one CPU, where spinning pulls them apart.
struct SpinRecord {
    static constexpr std::uint8_t misses_before_sleeping_at_once = 4;
    static constexpr std::uint8_t probe_every = 16;
    static constexpr auto probe_budget = std::chrono::microseconds(100);
    std::uint8_t misses = 0;
    std::uint8_t skipped = 0;

    /// How long this wait spins, where `budget` is what the caller allows; `oversubscribed()` is
    /// asked only after the misses.
    template <class Oversubscribed>
    std::chrono::nanoseconds spin_for(std::chrono::nanoseconds budget, Oversubscribed&& oversubscribed) noexcept {
        if (misses < misses_before_sleeping_at_once || !oversubscribed()) return budget;
        if (++skipped < probe_every) return std::chrono::nanoseconds::zero();
        skipped = 0;
        return budget < spin_budget ? budget : std::chrono::nanoseconds(probe_budget);  // not past a short timeout
    }
    void spun(bool found) noexcept {
        misses = found ? 0 : static_cast<std::uint8_t>(misses + (misses < misses_before_sleeping_at_once));
    }
};

/// The record of this thread's spins on `word`: a small table by address, where two words that
/// share an entry only share a guess.
inline SpinRecord& spin_record_for(const void* word) noexcept {
    static thread_local std::array<SpinRecord, 32> records{};
    const auto line = reinterpret_cast<std::uintptr_t>(word) >> 6;
    return records[(line ^ (line >> 5) ^ (line >> 10)) % records.size()];
}

/// Spins until `ready()` is true or the budget runs out; returns the last `ready()`. `word` is
/// what the wait sleeps on next: waits on it whose spins kept missing skip the spin (SpinRecord).
/// It never yields: a yield gives the rest of the time slice to whatever else runs on this CPU (a
/// busy process, say), and the yielder, never asleep, is not woken when the peer answers.
template <class Ready>
bool spin_until(const void* word, Ready&& ready, std::chrono::nanoseconds budget = spin_budget) {
    constexpr int burst = 64;
    if (budget <= std::chrono::nanoseconds::zero()) return ready();  // a poll, not a wait
    auto& record = spin_record_for(word);
    const auto spin = record.spin_for(budget, cpus_oversubscribed);
    if (spin == std::chrono::nanoseconds::zero()) return ready();
    const auto until = std::chrono::steady_clock::now() + spin;
    bool found = false;
    do {
        for (int i = 0; i < burst && !found; ++i) {
            found = ready();
            if (!found) cpu_relax();
        }
    } while (!found && std::chrono::steady_clock::now() < until);
    found = found || ready();
    record.spun(found);
    return found;
}

}  // namespace ipc::detail
