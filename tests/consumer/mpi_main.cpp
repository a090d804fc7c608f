// The consumer project's use of ipc::mpi: a map on two workers the pool spawns (no mpirun).
#include <cstdio>
#include <vector>

#include <ipc/mpi.hpp>

int triple(int x) { return 3 * x; }

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    ipc::mpi::Pool pool(2);
    const auto out = pool.map(&triple, std::vector<int>{1, 2, 3});
    pool.close();
    pool.join();
    if (out != std::vector<int>{3, 6, 9}) return 1;
    std::puts("mpi consumer: map on 2 spawned workers gave 3 6 9");
    return 0;
}
