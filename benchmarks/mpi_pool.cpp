// benchmarks/mpi_pool.cpp — ipc::mpi::Pool.map on the ranks of `mpirun -np 3` (two worker ranks),
// beside ipc::Pool with two worker processes on rank 0's machine, in the same run: a trivial
// function over 1000 inputs (chunksize 1 and automatic), and a map over 1 MiB arguments (bytes/s).
// mpi4py's MPIPoolExecutor runs the same cases (benchmarks/mpi4py_peer.py).
#include <cstddef>
#include <vector>

#include <ipc/mpi.hpp>
#include <ipc/pool.hpp>

#include "peer.hpp"
#include "pool_cases.hpp"

namespace bench {
namespace {

constexpr std::size_t big_argument = std::size_t{1} << 20;
constexpr int big_arguments_per_map = 16;

std::size_t size_of(const std::vector<std::byte>& argument) { return argument.size(); }

template <class P>
void map_big(benchmark::State& state) {
    P pool(2);
    const std::vector<std::vector<std::byte>> inputs(big_arguments_per_map, std::vector<std::byte>(big_argument));
    for (auto _ : state) {
        auto results = pool.map(size_of, inputs, 1);
        benchmark::DoNotOptimize(results.data());
    }
    state.SetItemsProcessed(state.iterations() * big_arguments_per_map);
    state.SetBytesProcessed(state.iterations() * big_arguments_per_map * static_cast<std::int64_t>(big_argument));
    pool.close();
    pool.join();
}

const bool registered = [] {
    add("ipc.mpi.Pool.map/chunksize:1", map_trivial<ipc::mpi::Pool>, std::size_t{1});
    add("ipc.mpi.Pool.map/chunksize:auto", map_trivial<ipc::mpi::Pool>, std::size_t{0});
    add("ipc.mpi.Pool.map/1Mi", map_big<ipc::mpi::Pool>);
    add("ipc.Pool.map/1Mi", map_big<ipc::Pool>);
    return true;
}();

}  // namespace
}  // namespace bench
