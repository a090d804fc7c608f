// examples/mpi_cluster_pool.cpp — the same Pool on a cluster: ipc::mpi::Pool hands each chunk of
// work to an MPI rank (one per machine, say), and each rank spreads its chunk over the cores of its
// own machine with a local ipc::Pool — MPI between machines, shared memory within one.
// Python (mpi4py):  with MPIPoolExecutor() as ex: totals = list(ex.map(count_primes_here, ranges))
//
//   usage: mpirun -n 3 ./mpi_cluster_pool            (rank 0 runs main, ranks 1 and 2 are workers)
//          mpirun -n 4 --host a,b,c,d ./mpi_cluster_pool   (one rank per machine)
//          ./mpi_cluster_pool                        (no mpirun: the pool spawns 2 workers here)
#include <unistd.h>

#include <iostream>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include <ipc/ipc.hpp>
#include <ipc/mpi.hpp>

bool is_prime(long n) {
    if (n < 2) return false;
    for (long d = 2; d * d <= n; ++d)
        if (n % d == 0) return false;
    return true;
}

/// Runs in a local pool's worker process on the rank's machine.
long count_primes(std::pair<long, long> range) {
    long count = 0;
    for (long n = range.first; n < range.second; ++n) count += is_prime(n);
    return count;
}

/// Runs on a worker rank: its range, cut again over this machine's cores.
std::pair<long, std::string> count_primes_here(std::pair<long, long> range) {
    const int cores = ipc::process_cpu_count();
    std::vector<std::pair<long, long>> pieces;
    const long step = (range.second - range.first + cores - 1) / cores;
    for (long start = range.first; start < range.second; start += step)
        pieces.emplace_back(start, std::min(start + step, range.second));
    ipc::Pool local(cores);
    const auto counts = local.map(&count_primes, pieces);
    local.close();
    local.join();
    return {std::accumulate(counts.begin(), counts.end(), 0L), ipc::mpi::processor_name()};
}

int main(int argc, char** argv) {
    ipc::init(argc, argv);  // on a worker rank this serves the pool and never returns

    ipc::mpi::Pool pool(2);  // 2 worker ranks (or 2 spawned workers without mpirun)
    std::vector<std::pair<long, long>> ranges;
    for (long start = 0; start < 400'000; start += 100'000) ranges.emplace_back(start, start + 100'000);
    const auto results = pool.map(&count_primes_here, ranges, 1);
    long total = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
        std::cout << "primes in [" << ranges[i].first << ", " << ranges[i].second << "): " << results[i].first
                  << " (counted on " << results[i].second << ")\n";
        total += results[i].first;
    }
    std::cout << "primes below 400000: " << total << " (expected 33860)\n";
    pool.close();
    pool.join();
}
