// sys/futex.hpp — sleeping on a 32-bit word in shared memory until another process changes it and
// wakes us, or the deadline passes (futex(2) without the PRIVATE flag, so it works across processes).
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>

#include "ipc/detail/deadline.hpp"

namespace ipc::detail {

/// Sleeps while `word == expected`, until woken or `deadline`. Returns false only on timeout;
/// a wake-up, a signal or a changed word return true, and the caller checks its condition again.
bool futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, const Deadline& deadline);
/// Wakes up to `count` processes sleeping on `word`.
void futex_wake(const std::atomic<std::uint32_t>& word, int count = INT_MAX) noexcept;

}  // namespace ipc::detail
