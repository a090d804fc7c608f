// sys/sigpipe.hpp — keeping SIGPIPE away from ipc's own writes through transports that raise it
// (Open MPI's TCP writes without MSG_NOSIGNAL): a dead peer must be reported, not kill the process.
#pragma once

#include <signal.h>

namespace ipc::detail {

/// Blocks SIGPIPE in this thread for the rest of its life: for threads of ipc's own (a Pool's
/// handler, a receiver), where a raised SIGPIPE is never wanted. SigpipeBlocked costs nothing there.
void block_sigpipe_for_good() noexcept;

/// While it lives, a write of this thread to a connection whose peer died fails with EPIPE instead
/// of raising SIGPIPE. A SIGPIPE raised meanwhile is consumed; the thread's signal mask is
/// restored. For calls on a thread of the program's.
class SigpipeBlocked {
public:
    SigpipeBlocked() noexcept;
    ~SigpipeBlocked();
    SigpipeBlocked(const SigpipeBlocked&) = delete;
    SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

private:
    sigset_t previous_{};
    bool restore_ = false;  ///< this object blocked it (the thread had not for good)
    bool consume_ = false;  ///< SIGPIPE was neither blocked nor pending before
};

}  // namespace ipc::detail
