// benchmarks/pool.cpp — Pool.map of a trivial function over 1000 inputs, chunksize 1 and automatic:
// what a task costs when the work itself costs nothing. Built once include/ipc/pool.hpp exists.
#include <numeric>
#include <vector>

#include <ipc/pool.hpp>

#include "peer.hpp"

namespace bench {
namespace {

/// Python's peer maps the same function over the same 1000 inputs (benchmarks/python_peers.py).
constexpr int tasks_per_map = 1000;

int identity(int x) { return x; }

/// chunksize 0: let map choose, as Python's chunksize=None does.
void pool_map(benchmark::State& state, std::size_t chunksize) {
    ipc::Pool pool(2);
    std::vector<int> inputs(tasks_per_map);
    std::iota(inputs.begin(), inputs.end(), 0);
    for (auto _ : state) {
        auto results = chunksize == 0 ? pool.map(identity, inputs) : pool.map(identity, inputs, chunksize);
        benchmark::DoNotOptimize(results.data());
    }
    state.SetItemsProcessed(state.iterations() * tasks_per_map);
}

const bool registered = [] {
    add("ipc.Pool.map/chunksize:1", pool_map, std::size_t{1});
    add("ipc.Pool.map/chunksize:auto", pool_map, std::size_t{0});
    return true;
}();

}  // namespace
}  // namespace bench
