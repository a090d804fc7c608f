// ipc/detail/pool_core.hpp — the untyped engine behind ipc::Pool and ipc::mpi::Pool: one inbox queue
// for results and workers' ends, a handler thread that dispatches tasks to the workers through their
// links (processes here, MPI ranks in ipc::mpi) and settles each chunk of each call.
#pragma once

#include <cstddef>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ipc/codec.hpp"
#include "ipc/detail/deadline.hpp"
#include "ipc/connection.hpp"
#include "ipc/process.hpp"
#include "ipc/queues.hpp"
#include "ipc/sharedctypes.hpp"

namespace ipc::detail {

/// What a submitted call does with its chunks' outcomes. Called on the pool's handler thread, one
/// call per chunk: either its encoded results, or the error that replaced them.
class JobBase {
public:
    virtual ~JobBase() = default;
    virtual void chunk_done(std::size_t chunk, codec::Reader& results) = 0;
    virtual void chunk_failed(std::size_t chunk, std::exception_ptr error) = 0;

    // For a call whose input a feeder reads (PoolCore::feed), on the feeder's thread:
    /// How many chunks may be fed now so that at most `ahead` of them wait unconsumed, after `fed`:
    /// waits up to `limit` for room for half of `ahead` at least (0 when it did not come).
    virtual std::size_t room_to_feed(std::size_t /*fed*/, std::size_t ahead, std::chrono::milliseconds /*limit*/) {
        return ahead;
    }
    /// The input ended after `chunks` chunks; `error` is what reading the next one threw, if it did.
    virtual void input_ended(std::size_t /*chunks*/, std::exception_ptr /*error*/) {}
};

/// The next encoded chunk of a call's input (task_header_size bytes reserved at its start), nothing
/// at its end; throws what reading the input threw.
using ChunkSource = std::function<std::optional<std::vector<std::byte>>()>;

/// A task message starts with this many bytes, which PoolCore fills with the task's id.
inline constexpr std::size_t task_header_size = sizeof(std::uint64_t);

struct PoolSettings {
    int processes = 1;
    std::uint64_t maxtasksperchild = 0;  ///< 0: unlimited
    StartMethod start_method = StartMethod::fork;
};

class WorkerLinks;
struct InboxHandle;
/// Makes the links to a pool's workers (processes, MPI ranks) once the engine has its inbox.
using WorkerLinksFactory = std::function<std::unique_ptr<WorkerLinks>(
    const PoolSettings& settings, const std::vector<std::byte>& initializer, const InboxHandle& inbox)>;

class PoolCore {
public:
    /// Starts the workers through `links`; `initializer` is an encoded call (empty: none) each runs first.
    PoolCore(PoolSettings settings, std::vector<std::byte> initializer, const WorkerLinksFactory& links);
    ~PoolCore();
    PoolCore(const PoolCore&) = delete;
    PoolCore& operator=(const PoolCore&) = delete;

    /// Queues `job`'s chunks (each a task message with task_header_size bytes reserved at its
    /// start). ValueError when the pool no longer takes work.
    void submit(const std::shared_ptr<JobBase>& job, std::vector<std::vector<std::byte>> chunks);
    /// Reads a call's input on a thread of its own, chunk by chunk, while the workers compute, as
    /// Python's task handler does: at most a few chunks per worker ahead of the consumer while the
    /// pool runs, all of it once the pool is closed (join() waits for the input to end). ValueError
    /// when the pool no longer takes work.
    void feed(const std::shared_ptr<JobBase>& job, ChunkSource source);
    /// ProcessError in any process but the one that created the pool (a forked child's copy).
    void check_owner(const char* operation) const;
    void close();
    void terminate();
    /// Waits for the handler thread (and so the workers) to finish; false when `deadline` came first.
    bool join(const Deadline& deadline);
    [[nodiscard]] int processes() const noexcept { return settings_.processes; }

private:
    struct Impl;
    PoolSettings settings_;
    std::unique_ptr<Impl> impl_;
};

/// The element type that marks a Pool's inbox segment, so no other queue can be opened as one.
struct PoolInbox {};

/// The pool's inbox queue as a Process argument (under spawn it reopens by name).
struct InboxHandle {
    std::shared_ptr<QueueCore> core;

    void ipc_save(codec::Writer& writer) const { core->save(writer); }
    static InboxHandle ipc_load(codec::Reader& reader) {
        return {std::make_shared<QueueCore>(reader, ElementType::of<PoolInbox>())};
    }
};

/// A worker's main loop (the target of every pool worker process).
int pool_worker_main(std::uint32_t index, Connection tasks, InboxHandle inbox, RawArray<std::uint64_t> slots,
                     std::vector<std::byte> initializer, std::uint64_t maxtasks);

}  // namespace ipc::detail
