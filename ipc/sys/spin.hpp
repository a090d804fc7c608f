// sys/spin.hpp — the short spin every wait makes before it sleeps: waking a sleeping process on
// another CPU costs tens of microseconds, so a brief spin turns most hand-offs into sub-µs ones
// (but not when the machine's CPUs are all wanted: then a spin only delays the peer).
#pragma once

#include <chrono>

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

/// True when, at the last look, more threads wanted a CPU than the machine has. A spin then only
/// takes the CPU from the peer or from others, and waits sleep at once, as a kernel pipe's do.
[[nodiscard]] bool cpus_oversubscribed() noexcept;
/// Looks again, when the last look is a few milliseconds old: called on the way to a sleep, whose
/// system calls hide the cost of the look.
void look_at_cpu_load() noexcept;

/// Spins until `ready()` is true or the budget runs out; returns the last `ready()`. It never
/// yields: a yield gives the rest of the time slice to whatever else runs on this CPU (a busy
/// process, say), just when the peer needs an answer. On a machine with more runnable threads than
/// CPUs it does not spin at all.
template <class Ready>
bool spin_until(Ready&& ready, std::chrono::nanoseconds budget = spin_budget) {
    constexpr int burst = 64;
    if (!cpus_oversubscribed()) {
        const auto until = std::chrono::steady_clock::now() + budget;
        do {
            for (int i = 0; i < burst; ++i) {
                if (ready()) return true;
                cpu_relax();
            }
        } while (std::chrono::steady_clock::now() < until);
    }
    if (ready()) return true;
    look_at_cpu_load();
    return false;
}

}  // namespace ipc::detail
