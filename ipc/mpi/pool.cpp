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
    if (!state.active)
        throw ValueError("ipc::mpi::Pool: this program was not started by mpirun (or its main() does not call "
                         "ipc::init(argc, argv) first); run it as `mpirun -n 5 ./program` for 4 worker ranks");
    if (state.rank != 0) throw ValueError("ipc::mpi::Pool: only rank 0 runs main() and its pools");
    const int available = state.size - 1;
    if (available < 1)
        throw ValueError("ipc::mpi::Pool: mpirun started 1 rank, so there is no worker rank; "
                         "run `mpirun -n 5 ./program` for 4 workers");
    const int processes = options.processes.value_or(available);
    if (processes < 1 || processes > available)
        throw ValueError("ipc::mpi::Pool: " + std::to_string(processes) + " processes asked, but the job has " +
                         std::to_string(available) + " worker rank" + (available == 1 ? "" : "s") +
                         " (mpirun -n " + std::to_string(state.size) + "); ask for 1 to " + std::to_string(available) +
                         ", or start more ranks");
    if (options.maxtasksperchild && *options.maxtasksperchild == 0)
        throw ValueError("ipc::mpi::Pool: maxtasksperchild must be at least 1 (leave it empty for no limit)");
    const ipc::detail::PoolSettings settings{processes, options.maxtasksperchild.value_or(0), StartMethod::spawn};
    return std::make_unique<ipc::detail::PoolCore>(settings, std::move(initializer), detail::make_rank_links);
}

}  // namespace

Pool::Pool(PoolOptions options, std::vector<std::byte> initializer)
    : ipc::Pool(WithCore{}, make_core(options, std::move(initializer))) {}

int rank() { return detail::world().active ? detail::world().rank : 0; }
int size() { return detail::world().active ? detail::world().size : 1; }
bool launched() { return detail::world().active; }

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
