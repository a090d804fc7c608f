// benchmarks/cases.hpp — the throughput and round-trip cases of bench_messages that live outside
// messages.cpp, which registers them all, size by size, so that neighbours in time are compared.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>

namespace bench {

// shared_memory_handoff.cpp: a SharedMemory block filled by one process and consumed by another,
// with Semaphores saying which slot is full.
void shared_memory_handoff(benchmark::State& state, std::int64_t size);

// alternatives.cpp: what users would use instead, measured the same way.
void kernel_pipe(benchmark::State& state, std::int64_t size);
void unix_socketpair(benchmark::State& state, std::int64_t size);
void boost_message_queue(benchmark::State& state, std::int64_t size);
/// fan_out_width senders (this process and children) and as many receivers on one message_queue.
void boost_message_queue_four_to_four(benchmark::State& state, std::int64_t size);
void same_process_memcpy(benchmark::State& state, std::int64_t size);
/// `busy_polled`: the reads spin on a non-blocking descriptor instead of sleeping in read(2).
void kernel_pipe_round_trip(benchmark::State& state, bool busy_polled);
void unix_socketpair_round_trip(benchmark::State& state, bool busy_polled);
/// The kernel pipe's round trip while two more processes stream messages through a kernel pipe.
void kernel_pipe_round_trip_streaming(benchmark::State& state);

}  // namespace bench
