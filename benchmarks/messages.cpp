// benchmarks/messages.cpp — messages between two processes: ipc's Pipe and Queue beside a kernel
// pipe, for 64 B and 1 MiB messages, and the round trip of an 8-byte message over a Pipe.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <vector>

#include <ipc/ipc.hpp>

namespace {

void drain_pipe(ipc::Connection reader, long count, long size) {
    std::vector<std::byte> buffer(static_cast<std::size_t>(size));
    for (long i = 0; i < count; ++i) reader.recv_bytes_into(buffer);
}

void drain_queue(ipc::Queue<std::vector<std::byte>> queue, long count) {
    for (long i = 0; i < count; ++i) (void)queue.get();
}

void drain_fd(int fd, long bytes) {
    std::vector<char> buffer(1 << 16);
    for (long got = 0; got < bytes;) {
        const auto n = ::read(fd, buffer.data(), std::min<long>(bytes - got, static_cast<long>(buffer.size())));
        if (n <= 0) return;
        got += n;
    }
}

void echo(ipc::Connection conn, long count) {
    std::vector<std::byte> buffer(8);
    for (long i = 0; i < count; ++i) {
        conn.recv_bytes_into(buffer);
        conn.send_bytes(buffer);
    }
}

void ipc_pipe(benchmark::State& state) {
    const auto size = state.range(0);
    auto [reader, writer] = ipc::Pipe(false, std::size_t{4} << 20);
    ipc::Process child(drain_pipe, reader, static_cast<long>(state.max_iterations), size);
    child.start();
    reader.close();
    std::vector<std::byte> message(static_cast<std::size_t>(size));
    for (auto _ : state) writer.send_bytes(message);
    child.join();
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * size);
}

void ipc_queue(benchmark::State& state) {
    const auto size = state.range(0);
    ipc::Queue<std::vector<std::byte>> queue(0, std::size_t{4} << 20);
    ipc::Process child(drain_queue, queue, static_cast<long>(state.max_iterations));
    child.start();
    std::vector<std::byte> message(static_cast<std::size_t>(size));
    for (auto _ : state) queue.put(message);
    child.join();
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * size);
}

void kernel_pipe(benchmark::State& state) {
    const auto size = state.range(0);
    int ends[2];
    if (::pipe(ends) != 0) state.SkipWithError("pipe");
    ipc::Process child(drain_fd, ends[0], static_cast<long>(state.max_iterations) * size);
    child.start();
    ::close(ends[0]);
    std::vector<char> message(static_cast<std::size_t>(size));
    for (auto _ : state)
        for (long done = 0; done < size;) done += ::write(ends[1], message.data() + done, static_cast<std::size_t>(size - done));
    child.join();
    ::close(ends[1]);
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * size);
}

void pipe_round_trip(benchmark::State& state) {
    auto [mine, theirs] = ipc::Pipe();
    ipc::Process child(echo, theirs, static_cast<long>(state.max_iterations));
    child.start();
    theirs.close();
    std::vector<std::byte> message(8);
    for (auto _ : state) {
        mine.send_bytes(message);
        mine.recv_bytes_into(message);
    }
    child.join();
}

BENCHMARK(ipc_pipe)->Arg(64)->Iterations(4'000'000)->UseRealTime();
BENCHMARK(ipc_pipe)->Arg(1 << 20)->Iterations(4'000)->UseRealTime();
BENCHMARK(ipc_queue)->Arg(64)->Iterations(4'000'000)->UseRealTime();
BENCHMARK(kernel_pipe)->Arg(64)->Iterations(2'000'000)->UseRealTime();
BENCHMARK(kernel_pipe)->Arg(1 << 20)->Iterations(4'000)->UseRealTime();
BENCHMARK(pipe_round_trip)->Iterations(200'000)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
