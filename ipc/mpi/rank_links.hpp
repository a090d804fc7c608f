// mpi/rank_links.hpp — the links of an mpi::Pool's engine to its worker ranks. Private.
#pragma once

#include <memory>
#include <vector>

#include "pool/worker_links.hpp"

namespace ipc::mpi::detail {

/// Worker i is rank i + 1 of ipc's communicator (a job started by mpirun); one such pool at a time.
ipc::detail::WorkerLinksFactory rank_links();
/// The pool spawns its workers (MPI_Comm_spawn, starting MPI here first if no launcher did) and
/// ends them with itself.
ipc::detail::WorkerLinksFactory spawned_links();

}  // namespace ipc::mpi::detail
