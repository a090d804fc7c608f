// sys/fence.cpp — registering for membarrier(2), and the heavy fence that pairs with light ones.
#include "ipc/detail/fence.hpp"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ipc::detail {

std::atomic<bool> fences_are_asymmetric{false};

namespace {
long membarrier(int command) noexcept { return ::syscall(__NR_membarrier, command, 0, 0); }

/// Registration does not survive exec, and a forked child registers again rather than rely on
/// what the kernel copies with the address space.
bool register_process() noexcept {
    const long supported = membarrier(MEMBARRIER_CMD_QUERY);
    return supported > 0 && (supported & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
           membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
}

[[maybe_unused]] const bool registered_at_start = [] {
    fences_are_asymmetric.store(register_process(), std::memory_order_relaxed);
    ::pthread_atfork(nullptr, nullptr,
                     [] { fences_are_asymmetric.store(register_process(), std::memory_order_relaxed); });
    return true;
}();
}  // namespace

void heavy_fence() noexcept {
    // The system call is a full barrier for this thread too; without it, a plain one serves the
    // processes that fall back to full fences as well (none registered then).
    if (membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0) std::atomic_thread_fence(std::memory_order_seq_cst);
}

}  // namespace ipc::detail
