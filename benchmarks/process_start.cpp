// benchmarks/process_start.cpp — what starting and joining one child costs, by start method.
#include <ipc/ipc.hpp>

#include "peer.hpp"

namespace bench {
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

const bool registered = [] {
    add("ipc.Process.start/fork", start_and_join, ipc::StartMethod::fork)->Unit(benchmark::kMicrosecond);
    add("ipc.Process.start/spawn", start_and_join, ipc::StartMethod::spawn)->Unit(benchmark::kMicrosecond);
    add("ipc.Process.start/forkserver", start_and_join, ipc::StartMethod::forkserver)->Unit(benchmark::kMicrosecond);
    return true;
}();

}  // namespace
}  // namespace bench
