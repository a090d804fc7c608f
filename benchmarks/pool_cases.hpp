// benchmarks/pool_cases.hpp — the Pool cases bench_pool and bench_mpi_pool share: map of a trivial
// function over 1000 inputs, on any pool type with ipc::Pool's API and two workers.
#pragma once

#include <cstddef>
#include <numeric>
#include <vector>

#include <benchmark/benchmark.h>

namespace bench {

/// Python's and mpi4py's peers map the same function over the same 1000 inputs.
inline constexpr int tasks_per_map = 1000;

inline int identity(int x) { return x; }

/// chunksize 0: let map choose, as Python's chunksize=None does.
template <class P>
void map_trivial(benchmark::State& state, std::size_t chunksize) {
    P pool(2);
    std::vector<int> inputs(tasks_per_map);
    std::iota(inputs.begin(), inputs.end(), 0);
    for (auto _ : state) {
        auto results = chunksize == 0 ? pool.map(identity, inputs) : pool.map(identity, inputs, chunksize);
        benchmark::DoNotOptimize(results.data());
    }
    state.SetItemsProcessed(state.iterations() * tasks_per_map);
    pool.close();
    pool.join();
}

}  // namespace bench
