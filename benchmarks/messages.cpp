// benchmarks/messages.cpp — messages between processes: ipc's Pipe, Queue (1→1, 2→1, 1→2) and
// SimpleQueue beside a SharedMemory hand-off and the alternatives, size by size; round trips.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#include <ipc/ipc.hpp>

#include "cases.hpp"
#include "peer.hpp"

namespace bench {
namespace {

using Bytes = std::vector<std::byte>;

/// The message of `size` bytes a typed case sends: a vector (each receive returns a new one, so
/// allocates), or a std::array of that size (copied in and out, nothing allocated).
template <class Message>
Message message_of(std::int64_t size) {
    if constexpr (std::is_same_v<Message, Bytes>) return Bytes(static_cast<std::size_t>(size));
    else return Message{};
}

/// Pipe(false) with the typed send/recv of a Message, or, when Message is void, with
/// send_bytes/recv_bytes_into (no allocation per message, as a kernel pipe's read).
template <class Message>
void pipe_messages(benchmark::State& state, std::int64_t size) {
    constexpr bool typed = !std::is_void_v<Message>;
    auto [reader, writer] = ipc::Pipe(false);
    Peers peers;
    peers.start(
        [](ipc::Connection reader, std::int64_t size, std::int64_t count, int done_fd) {
            Bytes buffer(static_cast<std::size_t>(size));
            for (std::int64_t i = 0; i < count; ++i) {
                if constexpr (typed) benchmark::DoNotOptimize(reader.recv<Message>());
                else reader.recv_bytes_into(buffer);
            }
            done(done_fd);
        },
        reader, size, state.max_iterations, peers.done_fd());
    reader.close();
    const auto message = message_of<std::conditional_t<typed, Message, Bytes>>(size);
    send_loop(state, peers, [&] {
        if constexpr (typed) writer.send(message);
        else writer.send_bytes(message);
    });
    set_throughput(state, size);
}

/// Zero copy: the sender writes each message into a loan of the ring (its one copy) and the
/// receiver reads it in place. The ring is at least twice the message, so that a loan fits.
void pipe_loans(benchmark::State& state, std::int64_t size) {
    const auto bytes = static_cast<std::size_t>(size);
    auto [reader, writer] = ipc::Pipe(false, std::max<std::size_t>(channel_buffer, 4 * bytes));
    Peers peers;
    peers.start(
        [](ipc::Connection reader, std::int64_t count, int done_fd) {
            for (std::int64_t i = 0; i < count; ++i) {
                const auto view = reader.recv_view();
                benchmark::DoNotOptimize(view.data()[view.size() - 1]);
            }
            done(done_fd);
        },
        reader, state.max_iterations, peers.done_fd());
    reader.close();
    const Bytes message(bytes, std::byte{1});
    send_loop(state, peers, [&] {
        auto loan = writer.loan(bytes);
        std::memcpy(loan.data(), message.data(), bytes);
        writer.send(std::move(loan));
    });
    set_throughput(state, size);
}

/// Gets until an empty message, the producer's "no more"; a queue with several consumers cannot
/// say in advance how many each will take.
template <class AnyQueue>
void consume_until_empty(AnyQueue queue, int done_fd) {
    while (!queue.get().empty()) {
    }
    done(done_fd);
}

template <class AnyQueue>
void consume(AnyQueue queue, std::int64_t count, int done_fd) {
    for (std::int64_t i = 0; i < count; ++i) benchmark::DoNotOptimize(queue.get());
    done(done_fd);
}

template <class AnyQueue, class Message = Bytes>
void one_to_one(benchmark::State& state, std::int64_t size) {
    AnyQueue queue;
    Peers peers;
    peers.start(consume<AnyQueue>, queue, state.max_iterations, peers.done_fd());
    const auto message = message_of<Message>(size);
    send_loop(state, peers, [&] { queue.put(message); });
    set_throughput(state, size);
}

/// This process and a child put, a third process gets; both producers start together at the gate.
void queue_two_to_one(benchmark::State& state, std::int64_t size) {
    ipc::Queue<Bytes> queue;
    ipc::Event gate;
    Peers peers;
    peers.start(consume<ipc::Queue<Bytes>>, queue, 2 * state.max_iterations, peers.done_fd());
    peers.start(
        [](ipc::Queue<Bytes> queue, ipc::Event gate, std::int64_t count, std::int64_t size, int done_fd) {
            const Bytes message(static_cast<std::size_t>(size));
            gate.wait();
            for (std::int64_t i = 0; i < count; ++i) queue.put(message);
            done(done_fd);
        },
        queue, gate, state.max_iterations, size, peers.done_fd());
    const Bytes message(static_cast<std::size_t>(size));
    gate.set();
    send_loop(state, peers, [&] { queue.put(message); });
    set_throughput(state, size, 2);
}

void queue_one_to_two(benchmark::State& state, std::int64_t size) {
    ipc::Queue<Bytes> queue;
    Peers peers;
    for (int i = 0; i < 2; ++i) peers.start(consume_until_empty<ipc::Queue<Bytes>>, queue, peers.done_fd());
    const Bytes message(static_cast<std::size_t>(size));
    auto left = state.max_iterations;
    for (auto _ : state) {
        queue.put(message);
        if (--left == 0) {
            queue.put({});
            queue.put({});
            peers.wait_done();
        }
    }
    set_throughput(state, size);
}

/// Four senders (this process and three children, started together at the gate) and four
/// receivers. Each sender ends with an empty message and each receiver stops at its first: the
/// queue keeps order, so the last empty comes after every message of every sender.
void queue_four_to_four(benchmark::State& state, std::int64_t size) {
    constexpr int senders = fan_out_width, receivers = fan_out_width;
    ipc::Queue<Bytes> queue;
    ipc::Event gate;
    Peers peers;
    for (int i = 0; i < receivers; ++i) peers.start(consume_until_empty<ipc::Queue<Bytes>>, queue, peers.done_fd());
    for (int i = 1; i < senders; ++i)
        peers.start(
            [](ipc::Queue<Bytes> queue, ipc::Event gate, std::int64_t count, std::int64_t size, int done_fd) {
                const Bytes message(static_cast<std::size_t>(size));
                gate.wait();
                for (std::int64_t i = 0; i < count; ++i) queue.put(message);
                queue.put({});
                done(done_fd);
            },
            queue, gate, state.max_iterations, size, peers.done_fd());
    const Bytes message(static_cast<std::size_t>(size));
    gate.set();
    auto left = state.max_iterations;
    for (auto _ : state) {
        queue.put(message);
        if (--left == 0) {
            queue.put({});
            peers.wait_done();
        }
    }
    set_throughput(state, size, senders);
}

void echo(ipc::Connection conn, std::int64_t count) {
    Bytes buffer(8);
    for (std::int64_t i = 0; i < count; ++i) {
        conn.recv_bytes_into(buffer);
        conn.send_bytes(buffer);
    }
}

void pipe_round_trip(benchmark::State& state) {
    auto [mine, theirs] = ipc::Pipe();
    Peers peers;
    peers.start(echo, theirs, state.max_iterations);
    theirs.close();
    Bytes message(8);
    Laps laps(state.max_iterations);
    laps.lap();
    for (auto _ : state) {
        mine.send_bytes(message);
        mine.recv_bytes_into(message);
        laps.lap();
    }
    laps.report(state);
}

/// The round trip while two more processes stream messages through a Pipe of their own, as fast
/// as they can; the last message, empty, ends the stream.
void pipe_round_trip_streaming(benchmark::State& state) {
    BackgroundPeers load;
    {
        auto [reader, writer] = ipc::Pipe(false);
        load.start(
            [](ipc::Connection reader, const std::atomic<int>*, int done_fd) {
                Bytes buffer(background_stream_size);
                while (reader.recv_bytes_into(buffer) != 0) {
                }
                done(done_fd);
            },
            reader);
        load.start(
            [](ipc::Connection writer, const std::atomic<int>* stop, int done_fd) {
                const Bytes message(background_stream_size);
                while (stop->load(std::memory_order_relaxed) == 0) writer.send_bytes(message);
                writer.send_bytes({});
                done(done_fd);
            },
            writer);
    }
    pipe_round_trip(state);
    load.finish();
}

/// The cases of a value of exactly `Size` bytes, a std::array (sizes up to 1 KiB: a larger value
/// would be a large object on the stack).
template <std::size_t Size>
void add_array_cases() {
    using Array = std::array<std::byte, Size>;
    const auto at = "/" + size_name(Size);
    add("ipc.Pipe.send.array" + at, pipe_messages<Array>, Size);
    add("ipc.Queue.array" + at, one_to_one<ipc::Queue<Array>, Array>, Size);
}
template <std::size_t... Sizes>
void add_array_cases_of(std::int64_t size) {
    ((size == static_cast<std::int64_t>(Sizes) ? add_array_cases<Sizes>() : void()), ...);
}

// Size by size, every channel in turn: on a machine whose speed drifts from minute to minute, the
// figures a ratio divides were taken seconds apart.
const bool registered = [] {
    for (const auto size : sizes) {
        const auto at = "/" + size_name(size);
        add("ipc.Pipe.send_bytes" + at, pipe_messages<void>, size);
        add("ipc.Pipe.send" + at, pipe_messages<Bytes>, size);
        add("ipc.Pipe.loan" + at, pipe_loans, size);
        add("ipc.Queue" + at, one_to_one<ipc::Queue<Bytes>>, size);
        add_array_cases_of<8, 64, 1024>(size);
        add("ipc.Queue.2to1" + at, queue_two_to_one, size);
        add("ipc.Queue.1to2" + at, queue_one_to_two, size);
        add("ipc.Queue.4to4" + at, queue_four_to_four, size);
        add("ipc.SimpleQueue" + at, one_to_one<ipc::SimpleQueue<Bytes>>, size);
        add("ipc.SharedMemory.handoff" + at, shared_memory_handoff, size);
        add("kernel.pipe" + at, kernel_pipe, size);
        add("kernel.socketpair" + at, unix_socketpair, size);
        add("boost.message_queue" + at, boost_message_queue, size);
        add("boost.message_queue.4to4" + at, boost_message_queue_four_to_four, size);
        add("memcpy" + at, same_process_memcpy, size);
    }
    add("ipc.Pipe.round_trip", pipe_round_trip)->Unit(benchmark::kMicrosecond);
    add("kernel.pipe.round_trip", kernel_pipe_round_trip, false)->Unit(benchmark::kMicrosecond);
    add("kernel.socketpair.round_trip", unix_socketpair_round_trip, false)->Unit(benchmark::kMicrosecond);
    add("kernel.pipe.polled.round_trip", kernel_pipe_round_trip, true)->Unit(benchmark::kMicrosecond);
    add("kernel.socketpair.polled.round_trip", unix_socketpair_round_trip, true)->Unit(benchmark::kMicrosecond);
    // Latency under load: the same round trips while another pair streams 1 MiB messages.
    add("ipc.Pipe.round_trip.streaming", pipe_round_trip_streaming)->Unit(benchmark::kMicrosecond);
    add("kernel.pipe.round_trip.streaming", kernel_pipe_round_trip_streaming)->Unit(benchmark::kMicrosecond);
    return true;
}();

}  // namespace
}  // namespace bench
