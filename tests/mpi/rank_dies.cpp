// A job whose worker rank is killed in the middle of a task (tests/mpi/expect_job_ends.sh runs it
// under mpirun): the job must end, non-zero, instead of rank 0 waiting forever for the result.
#include <signal.h>

#include <cstdio>
#include <numeric>
#include <vector>

#include "ipc/mpi.hpp"

namespace {
int die_at_fifty(int x) {
    if (x == 50) ::raise(SIGKILL);
    return x;
}
}  // namespace

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    ipc::mpi::Pool pool;
    std::vector<int> inputs(100);
    std::iota(inputs.begin(), inputs.end(), 0);
    pool.map(&die_at_fifty, inputs, 1);
    std::puts("unexpected: the map returned although a worker rank was killed");
    return 0;
}
