// pool/protocol.hpp — the messages between a Pool's parent and its workers. Private.
// Tasks go down each worker's own pipe; results, failures and deaths come up one inbox queue.
#pragma once

#include <cstdint>

namespace ipc::detail {

enum class InboxKind : std::uint32_t {
    result,       ///< a task's encoded results (what invoke_chunk wrote)
    task_failed,  ///< a task that could not even run: a RemoteFailure follows
    init_failed,  ///< the initializer threw: a RemoteFailure follows, then the worker exits
    died,         ///< the watcher saw a worker end (sent by the parent's watcher thread)
    wake,         ///< new work or close(): look at the submissions
    stop,         ///< terminate()
};

/// Every inbox message starts with this; `task` and `generation` only where they apply.
struct InboxHeader {
    InboxKind kind = InboxKind::wake;
    std::uint32_t worker = 0;
    std::uint64_t task = 0;
    std::uint64_t generation = 0;
};

/// A task id of 0 down a task pipe tells the worker to exit.
inline constexpr std::uint64_t stop_task = 0;

/// Each worker's slot in shared memory says which task it runs: the parent reads it after the
/// worker died to tell the task it killed (fails) from those it never started (sent again).
constexpr std::uint64_t slot_running(std::uint64_t task) noexcept { return task << 1 | 1; }
constexpr std::uint64_t slot_finished(std::uint64_t task) noexcept { return task << 1; }
constexpr bool slot_is_running(std::uint64_t slot, std::uint64_t task) noexcept { return slot == slot_running(task); }

}  // namespace ipc::detail
