// mpi/pool.cpp — ipc::mpi::Pool: the ipc::Pool engine with its workers on the other ranks of the
// job; and the hook that makes ipc::init start MPI (and the worker ranks' loop) under mpirun.
#include "ipc/mpi.hpp"

#include <unistd.h>

#include <cstring>
#include <string>

#include "mpi/rank_links.hpp"
#include "mpi/world.hpp"
#include "process/launch.hpp"

namespace ipc::mpi {

namespace {

/// Linked in with mpi::Pool, so every rank of a program that uses it starts MPI in ipc::init.
const bool hooked = (ipc::detail::add_init_hook(&detail::start_world), true);

std::unique_ptr<ipc::detail::PoolCore> make_core(const PoolOptions& options, std::vector<std::byte> initializer) {
    auto& state = detail::world();
    if (state.launched && state.rank != 0) throw ValueError("ipc::mpi::Pool: only rank 0 runs main() and its pools");
    if (options.maxtasksperchild && *options.maxtasksperchild == 0)
        throw ValueError("ipc::mpi::Pool: maxtasksperchild must be at least 1 (leave it empty for no limit)");
    const std::uint64_t maxtasks = options.maxtasksperchild.value_or(0);
    const int available = state.launched ? state.size - 1 : 0;
    if (available == 0) {
        // No worker ranks (no mpirun, or mpirun -n 1): the pool spawns its own.
        const int processes = options.processes.value_or(process_cpu_count());
        if (processes < 1)
            throw ValueError("ipc::mpi::Pool: the number of processes must be at least 1 (got " +
                             std::to_string(processes) + ")");
        return std::make_unique<ipc::detail::PoolCore>(ipc::detail::PoolSettings{processes, maxtasks, StartMethod::spawn},
                                                       std::move(initializer), detail::spawned_links());
    }
    const int processes = options.processes.value_or(available);
    if (processes < 1 || processes > available)
        throw ValueError("ipc::mpi::Pool: " + std::to_string(processes) + " processes asked, but the job has " +
                         std::to_string(available) + " worker rank" + (available == 1 ? "" : "s") +
                         " (mpirun -n " + std::to_string(state.size) + "); ask for 1 to " + std::to_string(available) +
                         ", or start more ranks");
    return std::make_unique<ipc::detail::PoolCore>(ipc::detail::PoolSettings{processes, maxtasks, StartMethod::spawn},
                                                   std::move(initializer), detail::rank_links());
}

}  // namespace

Pool::Pool(PoolOptions options, std::vector<std::byte> initializer)
    : ipc::Pool(WithCore{}, make_core(options, std::move(initializer))) {}

int rank() { return detail::world().active ? detail::world().rank : 0; }
int size() { return detail::world().active ? detail::world().size : 1; }
bool launched() { return detail::world().launched; }

std::string processor_name() {
    char name[MPI_MAX_PROCESSOR_NAME] = {};
    int length = 0;
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) {
        MPI_Get_processor_name(name, &length);
    } else if (::gethostname(name, sizeof name - 1) == 0) {
        length = static_cast<int>(std::strlen(name));
    }
    return std::string(name, static_cast<std::size_t>(length));
}

}  // namespace ipc::mpi
