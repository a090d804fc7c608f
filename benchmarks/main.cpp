// benchmarks/main.cpp — the one main() of every benchmark program: ipc::init first, so that the
// spawned children the benchmarks start run their target instead of the benchmarks.
#include <benchmark/benchmark.h>

#include <ipc/process.hpp>

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
