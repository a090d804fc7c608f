// ipc/detail/fence.hpp — asymmetric fences for "publish, then look" handshakes: the side that runs on
// every message pays a compiler barrier only, the rare side (a waiter about to sleep) a membarrier(2).
#pragma once

#include <atomic>

namespace ipc::detail {

/// True once this process is registered for membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) (Linux
/// 4.16 and later): then heavy_fence() in any process orders this one's light fences too.
extern std::atomic<bool> fences_are_asymmetric;

/// The hot side's fence: orders this thread's earlier stores before its later loads, as seen by a
/// thread that calls heavy_fence(). A plain full fence where membarrier is missing.
inline void light_fence() noexcept {
    if (fences_are_asymmetric.load(std::memory_order_relaxed))
        std::atomic_signal_fence(std::memory_order_seq_cst);
    else
        std::atomic_thread_fence(std::memory_order_seq_cst);
}

/// The rare side's fence: after it returns, every store that any thread issued before its own
/// light_fence() is visible here, or that thread's loads after it see this thread's earlier stores.
/// A system call that interrupts the CPUs running registered processes (≈1–5 µs).
void heavy_fence() noexcept;

}  // namespace ipc::detail
