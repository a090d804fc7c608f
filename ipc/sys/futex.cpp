// sys/futex.cpp — futex(2) waits with absolute monotonic deadlines, and wake-ups.
#include "sys/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "ipc/error.hpp"

namespace ipc::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "futex words must be plain 32-bit integers");

namespace {
long futex(const std::atomic<std::uint32_t>& word, int operation, std::uint32_t value, const timespec* timeout,
           std::uint32_t bitset) {
    // No FUTEX_PRIVATE_FLAG: the word lives in shared memory and the waiters in other processes.
    return ::syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(&word), operation, value, timeout, nullptr,
                     bitset);
}
}  // namespace

bool futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, const Deadline& deadline) {
    timespec absolute{};
    const timespec* timeout = nullptr;
    if (!deadline.is_never()) {
        // steady_clock is CLOCK_MONOTONIC on Linux; an absolute deadline survives EINTR restarts.
        const auto since_epoch = deadline.at().time_since_epoch();
        const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
        absolute.tv_sec = static_cast<time_t>(seconds.count());
        absolute.tv_nsec = static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds).count());
        timeout = &absolute;
    }
    if (futex(word, FUTEX_WAIT_BITSET, expected, timeout, FUTEX_BITSET_MATCH_ANY) == 0) return true;
    switch (errno) {
        case EAGAIN:  // the word changed before we slept
        case EINTR:
            return true;
        case ETIMEDOUT:
            return false;
        default:
            throw_os_error("futex wait", "");
    }
}

void futex_wake(const std::atomic<std::uint32_t>& word, int count) noexcept {
    futex(word, FUTEX_WAKE, static_cast<std::uint32_t>(count), nullptr, 0);
}

}  // namespace ipc::detail
