// ipc/mpi.hpp — the same Pool on MPI ranks across a cluster (mpi4py's MPIPoolExecutor and
// mpi4py.util.pool for C++). Link ipc::mpi; start the program with `mpirun -n N ./app`: rank 0
// runs main(), the other ranks become the pool's workers inside ipc::init.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "ipc/pool.hpp"

namespace ipc::mpi {

struct PoolOptions {
    /// Empty: every rank but this one. Fewer than that leaves the rest idle; more is a ValueError.
    std::optional<int> processes = {};
    /// Empty: a worker serves until the pool ends; else it runs the initializer again after that
    /// many tasks, as a fresh worker would (a rank cannot be replaced, only reset).
    std::optional<std::uint64_t> maxtasksperchild = {};
};

/// Python's multiprocessing.Pool whose workers are the other MPI ranks of this job (Open MPI). The
/// whole ipc::Pool API: map, imap, starmap, apply and their async forms, callbacks, chunksize,
/// initializer, close/terminate/join. Functions and values travel as under spawn — every rank runs
/// the same executable, so a function is found the same way, and values must be encodable.
///
/// One mpi::Pool at a time per program (the ranks are one set of workers); a second while one
/// lives is a ValueError. terminate() fails the unfinished work at once, but cannot stop a task
/// that runs on another rank: that rank finishes it, and its result is dropped.
///
/// A worker rank that dies ends the whole job: mpirun kills every rank and exits non-zero, naming
/// the rank and its signal (README, "From one machine to a cluster").
class Pool : public ipc::Pool {
public:
    explicit Pool(std::optional<int> processes = {}) : Pool(PoolOptions{.processes = processes}) {}
    explicit Pool(PoolOptions options) : Pool(std::move(options), std::vector<std::byte>{}) {}
    /// `initializer(initargs...)` runs once in each worker rank before its first task.
    template <class Init, class... InitArgs>
    Pool(PoolOptions options, Init initializer, std::tuple<InitArgs...> initargs = {})
        : Pool(std::move(options), encode_initializer(initializer, std::move(initargs))) {}

private:
    Pool(PoolOptions options, std::vector<std::byte> initializer);
};

/// This process's rank in the job (0 when not started by mpirun).
[[nodiscard]] int rank();
/// How many ranks the job has (1 when not started by mpirun).
[[nodiscard]] int size();
/// The name of the machine this rank runs on (MPI_Get_processor_name).
[[nodiscard]] std::string processor_name();
/// Whether mpirun (or another MPI launcher) started this program.
[[nodiscard]] bool launched();

}  // namespace ipc::mpi
