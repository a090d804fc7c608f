// benchmarks/process_start.cpp — what starting and joining one child costs, by start method.
// Python's multiprocessing measures ~1 ms (fork) and ~20–50 ms (spawn, a new interpreter) here.
#include <benchmark/benchmark.h>

#include <ipc/ipc.hpp>

namespace {

void empty_target() {}

void start_and_join(benchmark::State& state, ipc::StartMethod method) {
    for (auto _ : state) {
        ipc::Process child({.start_method = method}, empty_target);
        child.start();
        child.join();
        if (child.exitcode() != 0) state.SkipWithError("child failed");
    }
    state.SetItemsProcessed(state.iterations());
}

BENCHMARK_CAPTURE(start_and_join, fork, ipc::StartMethod::fork)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(start_and_join, spawn, ipc::StartMethod::spawn)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
