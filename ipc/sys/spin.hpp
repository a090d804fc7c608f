// sys/spin.hpp — the short spin every wait makes before it sleeps: waking a sleeping process on
// another CPU costs tens of microseconds, so a brief spin turns most hand-offs into sub-µs ones.
#pragma once

#include <chrono>
#include <thread>

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

}  // namespace ipc::detail
