// sys/spin.hpp — the short spin every wait makes before it sleeps: waking a sleeping process on
// another CPU costs tens of microseconds, so a brief spin turns most hand-offs into sub-µs ones.
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

/// Spins until `ready()` is true or the budget runs out; returns the last `ready()`. It never
/// yields: a yield gives the rest of the time slice to whatever else runs on this CPU (a busy
/// process, say), and the yielder, never asleep, is not woken when the peer answers. It spins on a
/// busy machine too: there a sleeping waiter waits for the scheduler as well as for the peer.
template <class Ready>
bool spin_until(Ready&& ready, std::chrono::nanoseconds budget = spin_budget) {
    constexpr int burst = 64;
    const auto until = std::chrono::steady_clock::now() + budget;
    do {
        for (int i = 0; i < burst; ++i) {
            if (ready()) return true;
            cpu_relax();
        }
    } while (std::chrono::steady_clock::now() < until);
    return ready();
}

}  // namespace ipc::detail
