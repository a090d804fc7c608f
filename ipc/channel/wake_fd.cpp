// channel/wake_fd.cpp — making, signalling and settling the readiness eventfds of channels.
#include "channel/wake_fd.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

#include "ipc/detail/ring.hpp"
#include "ipc/error.hpp"

namespace ipc::detail {

WakeFd make_wake_fd(const char* what) {
    int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) throw_os_error("eventfd", what);
    return std::make_shared<Fd>(fd);
}

WakeFd duplicate_wake_fd(int fd) {
    int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) throw_os_error("dup", "readiness descriptor");
    return std::make_shared<Fd>(copy);
}

void signal_wake(const WakeFd& wake) noexcept {
    if (!wake) return;
    const std::uint64_t one = 1;
    (void)!::write(wake->get(), &one, sizeof one);  // EAGAIN: the counter is already huge, still readable
}

void drain_wake(const WakeFd& wake) noexcept {
    if (!wake) return;
    std::uint64_t count = 0;
    (void)!::read(wake->get(), &count, sizeof count);
}

void settle_wake(const Ring& ring, const WakeFd& wake) noexcept {
    const auto now = Deadline::after({});
    if (ring_poll(ring, now, nullptr)) return signal_wake(wake);
    // Reset, then look again: a message published in between must leave it readable.
    drain_wake(wake);
    if (ring_poll(ring, now, nullptr)) signal_wake(wake);
}

}  // namespace ipc::detail
