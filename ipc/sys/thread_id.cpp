// sys/thread_id.cpp — fills the cache of this thread's ids, and empties it in a forked child.
#include "ipc/detail/thread_id.hpp"

#include <pthread.h>
#include <unistd.h>

namespace ipc::detail {

namespace {
// A forked child has one thread, the one that forked: its cached ids were its parent's, and a
// child that kept its parent's thread id would pass for the parent as a lock owner.
[[maybe_unused]] const int fork_handler_installed = ::pthread_atfork(nullptr, nullptr, [] { thread_ids = {}; });
}  // namespace

ThreadIds& fetch_thread_ids() noexcept {
    thread_ids.tid = static_cast<std::uint32_t>(::gettid());
    thread_ids.pid = static_cast<std::uint32_t>(::getpid());
    return thread_ids;
}

}  // namespace ipc::detail
