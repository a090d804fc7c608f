// mpi/world.hpp — this program's place in an MPI job: started inside ipc::init when a launcher
// (mpirun) started the program, a communicator of ipc's own, the messages between rank 0's pools
// and the worker ranks, and the end of the job at exit. Private.
#pragma once

#include <mpi.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "ipc/codec.hpp"
#include "sys/sigpipe.hpp"

namespace ipc::mpi::detail {

/// Message tags on ipc's communicator. Rank 0 sends start, task and exit; workers send hello (if
/// spawned), reply and bye.
enum Tag : int {
    start_tag = 1,  ///< a Start: serve pool `pool` as worker `index`
    task_tag = 2,   ///< pool id, then a task message (pool/protocol.hpp; stop_task: leave the pool)
    exit_tag = 3,   ///< the job ends: answer bye and return from ipc::init's worker loop
    reply_tag = 4,  ///< pool id, then an inbox message (InboxHeader and its body)
    bye_tag = 5,
    hello_tag = 6,  ///< a spawned worker's Hello, first thing
};

/// A spawned worker introduces itself, so that the pool can watch it while it runs on this machine.
struct Hello {
    std::int32_t pid = 0;
    std::string host;

    template <class Archive>
    void serialize(Archive& archive) {
        archive(pid, host);
    }
};

/// What a worker rank needs to serve one pool.
struct Start {
    std::uint64_t pool = 0;
    std::uint64_t generation = 0;
    std::uint32_t index = 0;
    std::uint64_t maxtasks = 0;  ///< 0: unlimited
    std::vector<std::byte> initializer;

    template <class Archive>
    void serialize(Archive& archive) {
        archive(pool, generation, index, maxtasks, initializer);
    }
};

/// The argument that marks a worker spawned by an mpi::Pool (MPI_Comm_spawn) on its command line.
inline constexpr const char* spawned_worker_marker = "--ipc-mpi-worker";

struct World {
    bool active = false;        ///< MPI was started here: by ipc::init under a launcher, or by a Pool
    bool launched = false;      ///< by ipc::init, because a launcher started the program
    MPI_Comm comm = MPI_COMM_NULL;  ///< ipc's own duplicate of MPI_COMM_WORLD
    int rank = 0;
    int size = 1;
    std::vector<std::string> hosts;  ///< on rank 0: each rank's processor name
    std::atomic<bool> pool_alive{false};  ///< on rank 0: an mpi::Pool holds the worker ranks
    std::atomic<std::uint64_t> pools_made{0};
    std::atomic_flag ending_job;  ///< end_job was called: no orderly end at exit
    std::shared_timed_mutex calls;  ///< see MpiCall  ///< numbers each pool, so replies of an earlier one are told apart
    /// Sends whose pool ended before they completed: finished before MPI_Finalize.
    std::vector<MPI_Request> leftover_sends;
    std::vector<std::shared_ptr<std::vector<std::byte>>> leftover_buffers;
};

World& world();

/// A pool's workers: ranks `first`, `first + 1`, … of `comm` (ipc's communicator, or the
/// intercommunicator to workers the pool spawned, which it ends with itself).
struct Ranks {
    MPI_Comm comm = MPI_COMM_NULL;
    int first = 0;
    bool spawned = false;
    std::vector<Hello> hellos;  ///< spawned workers' pids and hosts, by rank
};

/// Starts `count` workers running this program (MPI_Comm_spawn), starting MPI here first when no
/// launcher did (a singleton); they serve pools from inside ipc::init. Returns once each said hello.
Ranks spawn_workers(int count);
/// Ends spawned workers: exit, their byes (whatever else they still send is dropped), the
/// completion of `sends` (still going to them), disconnect.
void end_spawned(Ranks& ranks, int count, std::vector<MPI_Request>& sends);

/// The init hook: under a launcher, starts MPI; on a worker rank serves pools until rank 0 ends
/// the job, then finalizes and exits.
void start_world(int argc, char** argv);

/// Whether a message is due soon (spin a little first) or the rank is idle (sleep from the start).
enum class Patience { expecting, idle };

/// Waits for a message from `source` with `tag`, polling so that an idle rank leaves its CPU to
/// others (Open MPI's own waits spin); false when `stop()` turned true first.
bool wait_message(MPI_Comm comm, int source, int tag, MPI_Message& message, MPI_Status& status,
                  const std::function<bool()>& stop, Patience patience = Patience::expecting);

/// Receives a matched message whole into `buffer` (resized to fit).
void receive(MPI_Message& message, const MPI_Status& status, std::vector<std::byte>& buffer);

/// Held around each MPI call of a pool's threads on rank 0, so that end_job can let the calls in
/// progress finish first: Open MPI's error reporting is not thread-safe, and a thread that meets
/// the dead peer inside MPI while another thread aborts may crash the process.
/// Once the job is ending, no new call starts: the thread waits for the end.
class MpiCall {
public:
    MpiCall();

private:
    std::shared_lock<std::shared_timed_mutex> lock_;
};

/// Ends the whole job (MPI_Abort, status 1) after printing `why` to stderr. The first thread to call
/// it does so; later ones wait for the end. If the MPI library has not ended this process 10 s
/// later (its state after a peer died may be broken), it exits anyway.
[[noreturn]] void end_job(const std::string& why);

/// Throws ipc::ProcessError naming the MPI call and the library's error text when `code` is not success.
void check(int code, const char* call);

/// The worker ranks' side: serves pools until rank 0 sends exit.
void serve_pools(MPI_Comm comm);

}  // namespace ipc::mpi::detail
