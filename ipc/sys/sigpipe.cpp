// sys/sigpipe.cpp — SIGPIPE blocked for good in ipc's threads, or for a scope in the program's.
#include "sys/sigpipe.hpp"

#include <pthread.h>

#include <ctime>

namespace ipc::detail {

namespace {
thread_local bool blocked_for_good = false;

sigset_t just_sigpipe() noexcept {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    return set;
}
}  // namespace

void block_sigpipe_for_good() noexcept {
    const auto pipe = just_sigpipe();
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    blocked_for_good = true;
}

SigpipeBlocked::SigpipeBlocked() noexcept {
    if (blocked_for_good) return;
    const auto pipe = just_sigpipe();
    pthread_sigmask(SIG_BLOCK, &pipe, &previous_);
    restore_ = true;
    sigset_t pending;
    sigpending(&pending);
    consume_ = !sigismember(&previous_, SIGPIPE) && !sigismember(&pending, SIGPIPE);
}

SigpipeBlocked::~SigpipeBlocked() {
    if (!restore_) return;
    if (consume_) {
        const auto pipe = just_sigpipe();
        const timespec now{};
        while (sigtimedwait(&pipe, nullptr, &now) == SIGPIPE) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

}  // namespace ipc::detail
