// ipc/detail/thread_id.hpp — this thread's and this process's ids, cached so that a lock costs no
// system call to name its owner; a forked child forgets its parent's.
#pragma once

#include <cstdint>

namespace ipc::detail {

struct ThreadIds {
    std::uint32_t tid = 0;
    std::uint32_t pid = 0;
};
inline constinit thread_local ThreadIds thread_ids{};
/// Reads the ids into the cache (the first call in a thread, and the first after fork).
ThreadIds& fetch_thread_ids() noexcept;
inline std::uint32_t this_thread_id() noexcept { return thread_ids.tid ? thread_ids.tid : fetch_thread_ids().tid; }
inline std::uint32_t this_process_id() noexcept { return thread_ids.pid ? thread_ids.pid : fetch_thread_ids().pid; }

}  // namespace ipc::detail
