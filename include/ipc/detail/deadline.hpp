// ipc/detail/deadline.hpp — when a blocking call gives up: a point on the monotonic clock, or never.
// Every wait in ipc takes one, so any blocked call can end by its timeout.
#pragma once

#include <chrono>

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
    /// The earlier of this deadline and `within` from now.
    [[nodiscard]] Deadline or_sooner(std::chrono::nanoseconds within) const noexcept {
        Deadline other = after(within);
        return never_ || other.at_ < at_ ? other : *this;
    }

private:
    Deadline() = default;
    std::chrono::steady_clock::time_point at_{};
    bool never_ = true;
};

/// A timeout as Python takes it (negative counts as zero), in any std::chrono unit.
template <class Rep, class Period>
Deadline deadline_after(std::chrono::duration<Rep, Period> timeout) {
    return Deadline::after(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
}

}  // namespace ipc::detail
