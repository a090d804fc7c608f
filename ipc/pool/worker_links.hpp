// pool/worker_links.hpp — how a Pool's engine reaches its workers, whatever they are: processes on
// this machine (process_links.cpp) or MPI ranks (ipc/mpi). Private.
//
// The engine decides everything (which task goes where, what a worker's end means for its tasks);
// the links only start workers, carry task messages to them, and post what comes back — results,
// failures and each worker's end — to the engine's inbox, in the order it happened.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ipc/detail/pool_call.hpp"
#include "ipc/detail/pool_core.hpp"
#include "pool/protocol.hpp"

namespace ipc::detail {

/// At most this many bytes of task messages wait for one busy worker (a worker not running any
/// takes even a larger one): the handler must never block on a busy worker's channel, since that
/// worker may itself wait for the handler to read the inbox.
inline constexpr std::size_t max_in_flight_bytes = std::size_t{1} << 17;

/// How a worker ended, as the engine needs it to settle its tasks.
struct WorkerEnd {
    int exitcode = 0;
    std::string who;         ///< "Pool worker ForkPoolWorker-3 (pid 123) exited with code 1"
    std::uint64_t slot = 0;  ///< its slot at the end (pool/protocol.hpp): which task it was running
};

class WorkerLinks {
public:
    virtual ~WorkerLinks() = default;
    /// Starts worker `index` (again, once it ended) as incarnation `generation`: it runs the pool's
    /// initializer, then the tasks sent to it; its end is posted as `died` with this generation.
    virtual void start(std::uint32_t index, std::uint64_t generation) = 0;
    /// Called once, after the first start of every worker and before the engine's thread runs.
    virtual void begin_watching() = 0;
    /// The worker's name for messages ("ForkPoolWorker-3", "MPI rank 2 on node7").
    [[nodiscard]] virtual std::string name(std::uint32_t index) const = 0;
    /// Sends one task message (stop_task: leave). False when the worker is gone: its end comes.
    virtual bool send(std::uint32_t index, std::span<const std::byte> message) = 0;
    /// After a `died` message for the current generation: how the worker ended, or nothing when it
    /// still runs (the end is then posted again when it comes).
    virtual std::optional<WorkerEnd> ended(std::uint32_t index) = 0;
    /// terminate(): ends every running worker now (as far as it can be) and waits for them.
    virtual void stop_running() = 0;
    /// No `died` message is posted any more (the engine's thread is gone).
    virtual void stop_watching() = 0;
};

/// Worker processes on this machine, started by the pool's start method.
std::unique_ptr<WorkerLinks> make_process_links(const PoolSettings& settings, const std::vector<std::byte>& initializer,
                                                const InboxHandle& inbox);

/// Posts an event without a body (wake, stop, died) to a pool's inbox.
void post_event(QueueCore& inbox, InboxKind kind, std::uint32_t worker = 0, std::uint64_t generation = 0);

/// A worker's side, whatever carries its messages: runs the encoded initializer (empty: none), or
/// one task message, appending an InboxHeader for `worker` and the outcome to `out` (what `out`
/// held stays: an MPI worker's reply starts with its pool's id). run_task returns the task's id
/// (stop_task: nothing was run).
std::optional<RemoteFailure> run_initializer(std::span<const std::byte> initializer);
std::uint64_t run_task(std::span<const std::byte> message, std::uint32_t worker, std::vector<std::byte>& out);

}  // namespace ipc::detail
