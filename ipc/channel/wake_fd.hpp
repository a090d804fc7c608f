// channel/wake_fd.hpp — readiness eventfds for poll(2), epoll and Boost.Asio: made by a channel's creator
// (inherited by fork, handed to spawned children with SCM_RIGHTS), signalled by one side, drained by the other.
#pragma once

#include <memory>

#include "sys/fd.hpp"

namespace ipc::detail {

/// A channel's readiness eventfd, shared by every handle of this process that uses it; null when
/// the handle has none.
using WakeFd = std::shared_ptr<Fd>;

/// A new nonblocking eventfd; `what` names the channel in the OSError.
WakeFd make_wake_fd(const char* what);
/// This process's own copy of a descriptor handed over by the codec.
WakeFd duplicate_wake_fd(int fd);
/// Makes the descriptor readable (no-op for a null one).
void signal_wake(const WakeFd& wake) noexcept;
/// Resets the descriptor to not readable.
void drain_wake(const WakeFd& wake) noexcept;

class Ring;
/// After a receive from `ring`, whose readiness descriptor is `wake`: readable again while a
/// message waits, reset once the ring is empty. Several receivers (and an event loop's read,
/// which drains it) share the descriptor, so a receiver that leaves messages behind must leave
/// it readable for the next one.
void settle_wake(const Ring& ring, const WakeFd& wake) noexcept;

}  // namespace ipc::detail
