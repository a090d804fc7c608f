// benchmarks/alternatives.cpp — what users would otherwise use, measured as ipc is: a kernel pipe and
// an AF_UNIX socketpair (one write per message, reads of exactly the message), Boost.Interprocess's
// message_queue, and memcpy in one process as the limit of any copy.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/interprocess/ipc/message_queue.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <ipc/synchronize.hpp>

#include "cases.hpp"
#include "peer.hpp"

namespace bench {
namespace {

using Bytes = std::vector<std::byte>;

class Fd {
public:
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&&) = delete;
    ~Fd() { close(); }
    [[nodiscard]] int get() const noexcept { return fd_; }
    void close() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

/// The buffer a channel got: its size, and the error of the call that was to make it
/// channel_buffer (0: none). The report shows both: a refused buffer is not hidden.
struct Buffer {
    int bytes = 0;
    int error = 0;
    void report(benchmark::State& state) const {
        state.counters["buffer_bytes"] = bytes;
        state.counters["buffer_errno"] = error;
    }
};

std::pair<Fd, Fd> kernel_pipe_ends(Buffer* buffer = nullptr) {
    int ends[2];
    if (::pipe2(ends, O_CLOEXEC) != 0) fail("pipe2");
    // As large as ipc's ring; the default pipe-max-size allows it.
    const int error = ::fcntl(ends[1], F_SETPIPE_SZ, channel_buffer) < 0 ? errno : 0;
    if (buffer) *buffer = {::fcntl(ends[1], F_GETPIPE_SZ), error};
    return {Fd(ends[0]), Fd(ends[1])};
}

std::pair<Fd, Fd> socketpair_ends(Buffer* buffer = nullptr) {
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) fail("socketpair");
    int error = 0;
    for (const int end : ends) {
        for (const auto& [forced, plain] : {std::pair{SO_SNDBUFFORCE, SO_SNDBUF}, std::pair{SO_RCVBUFFORCE, SO_RCVBUF}}) {
            // The FORCE options pass the net.core limits but need CAP_NET_ADMIN; the plain ones
            // are capped by net.core.wmem_max/rmem_max, which the report then shows.
            if (::setsockopt(end, SOL_SOCKET, forced, &channel_buffer, sizeof channel_buffer) != 0) {
                error = errno;
                (void)::setsockopt(end, SOL_SOCKET, plain, &channel_buffer, sizeof channel_buffer);
            }
        }
    }
    if (buffer) {
        int sent = 0;
        socklen_t length = sizeof sent;
        ::getsockopt(ends[0], SOL_SOCKET, SO_SNDBUF, &sent, &length);
        *buffer = {sent / 2, error};  // Linux doubles what it is given, for its own bookkeeping
    }
    return {Fd(ends[0]), Fd(ends[1])};
}

void read_exactly(int fd, std::byte* data, std::size_t size) {
    for (std::size_t got = 0; got < size;) {
        const auto n = ::read(fd, data + got, size - got);
        if (n == 0) throw std::runtime_error("unexpected end of file");
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("read");
        }
        got += static_cast<std::size_t>(n);
    }
}

void write_all(int fd, const std::byte* data, std::size_t size) {
    for (std::size_t done = 0; done < size;) {
        const auto n = ::write(fd, data + done, size - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("write");
        }
        done += static_cast<std::size_t>(n);
    }
}

void read_messages(int fd, std::int64_t size, std::int64_t count, int done_fd) {
    Bytes buffer(static_cast<std::size_t>(size));
    for (std::int64_t i = 0; i < count; ++i) read_exactly(fd, buffer.data(), buffer.size());
    done(done_fd);
}

void stream(benchmark::State& state, std::int64_t size, std::pair<Fd, Fd> ends, const Buffer& buffer) {
    buffer.report(state);
    auto& [reader, writer] = ends;
    Peers peers;
    peers.start(read_messages, reader.get(), size, state.max_iterations, peers.done_fd());
    reader.close();
    const Bytes message(static_cast<std::size_t>(size));
    send_loop(state, peers, [&] { write_all(writer.get(), message.data(), message.size()); });
    set_throughput(state, size);
}

/// How a round trip's reads wait: asleep in read(2), or spinning on a non-blocking read, as ipc's
/// waits spin before they sleep. The two separate what spinning buys from what the channel costs.
enum class Reading { blocking, busy_polled };

/// Reads exactly `size` bytes from a non-blocking `fd`, retrying at once when there are none.
void poll_exactly(int fd, std::byte* data, std::size_t size) {
    for (std::size_t got = 0; got < size;) {
        const auto n = ::read(fd, data + got, size - got);
        if (n == 0) throw std::runtime_error("unexpected end of file");
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            fail("read");
        }
        got += static_cast<std::size_t>(n);
    }
}

void read_message(Reading reading, int fd, std::byte* data, std::size_t size) {
    if (reading == Reading::busy_polled) poll_exactly(fd, data, size);
    else read_exactly(fd, data, size);
}

void make_nonblocking(int fd) {
    if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) fail("fcntl(O_NONBLOCK)");
}

void echo_fd(int in, int out, std::int64_t count, Reading reading) {
    std::byte buffer[8];
    for (std::int64_t i = 0; i < count; ++i) {
        read_message(reading, in, buffer, sizeof buffer);
        write_all(out, buffer, sizeof buffer);
    }
}

void round_trip(benchmark::State& state, int out, int in, Reading reading) {
    std::byte message[8] = {};
    Laps laps(state.max_iterations);
    laps.lap();
    for (auto _ : state) {
        write_all(out, message, sizeof message);
        read_message(reading, in, message, sizeof message);
        laps.lap();
    }
    laps.report(state);
}

/// The /dev/shm path of the Boost queue that exists now, removed by a signal handler when the run is
/// interrupted before the receiver removed it: Boost would leave it behind.
char boost_queue_path[64];
std::atomic<bool> boost_queue_exists{false};

extern "C" void remove_boost_queue_and_die(int signal) {
    if (boost_queue_exists.load()) ::unlink(boost_queue_path);
    // SA_RESETHAND restored the default action; it takes effect once this handler returns.
    ::raise(signal);
}

/// A uniquely named Boost message_queue's name for the lifetime of a case; removed at the end.
class BoostQueueName {
public:
    BoostQueueName() {
        static const bool handlers = [] {
            struct sigaction action {};
            action.sa_handler = remove_boost_queue_and_die;
            action.sa_flags = SA_RESETHAND;
            for (const int signal : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT}) ::sigaction(signal, &action, nullptr);
            return true;
        }();
        (void)handlers;
        static int counter = 0;
        name_ = "ipc_bench_mq_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
        std::snprintf(boost_queue_path, sizeof boost_queue_path, "/dev/shm/%s", name_.c_str());
        boost::interprocess::message_queue::remove(name_.c_str());
        boost_queue_exists = true;
    }
    BoostQueueName(const BoostQueueName&) = delete;
    BoostQueueName& operator=(const BoostQueueName&) = delete;
    ~BoostQueueName() {
        boost::interprocess::message_queue::remove(name_.c_str());
        boost_queue_exists = false;
    }
    [[nodiscard]] const char* c_str() const noexcept { return name_.c_str(); }

private:
    std::string name_;
};

void receive_from_boost(std::string name, std::int64_t size, std::int64_t count, int done_fd) {
    boost::interprocess::message_queue queue(boost::interprocess::open_only, name.c_str());
    // Both processes have it mapped now: without its name, even a SIGKILLed run leaves nothing behind.
    boost::interprocess::message_queue::remove(name.c_str());
    Bytes buffer(static_cast<std::size_t>(size));
    std::size_t got = 0;
    unsigned priority = 0;
    for (std::int64_t i = 0; i < count; ++i) queue.receive(buffer.data(), buffer.size(), got, priority);
    done(done_fd);
}

}  // namespace

void kernel_pipe(benchmark::State& state, std::int64_t size) {
    Buffer buffer;
    auto ends = kernel_pipe_ends(&buffer);
    stream(state, size, std::move(ends), buffer);
}

void unix_socketpair(benchmark::State& state, std::int64_t size) {
    Buffer buffer;
    auto ends = socketpair_ends(&buffer);
    stream(state, size, std::move(ends), buffer);
}

void boost_message_queue(benchmark::State& state, std::int64_t size) {
    BoostQueueName name;
    // Boost reserves max_num_msg * max_msg_size up front: about ipc's 1 MiB ring, at least 4 messages.
    const auto capacity = std::max<std::int64_t>(4, channel_buffer / size);
    boost::interprocess::message_queue queue(boost::interprocess::create_only, name.c_str(),
                                             static_cast<std::size_t>(capacity), static_cast<std::size_t>(size));
    Peers peers;
    peers.start(receive_from_boost, std::string(name.c_str()), size, state.max_iterations, peers.done_fd());
    const Bytes message(static_cast<std::size_t>(size));
    send_loop(state, peers, [&] { queue.send(message.data(), message.size(), 0); });
    set_throughput(state, size);
}

void boost_message_queue_four_to_four(benchmark::State& state, std::int64_t size) {
    BoostQueueName name;
    const auto capacity = std::max<std::int64_t>(4, channel_buffer / size);
    boost::interprocess::message_queue queue(boost::interprocess::create_only, name.c_str(),
                                             static_cast<std::size_t>(capacity), static_cast<std::size_t>(size));
    // The children open it by name (removed at the end of the case); the senders start together at
    // the gate, as ipc's do. Each sender ends with an empty message, each receiver stops at one.
    ipc::Event gate;
    Peers peers;
    for (int i = 0; i < fan_out_width; ++i)
        peers.start(
            [](std::string name, std::int64_t size, int done_fd) {
                boost::interprocess::message_queue queue(boost::interprocess::open_only, name.c_str());
                Bytes buffer(static_cast<std::size_t>(size));
                std::size_t got = 0;
                unsigned priority = 0;
                do queue.receive(buffer.data(), buffer.size(), got, priority);
                while (got != 0);
                done(done_fd);
            },
            std::string(name.c_str()), size, peers.done_fd());
    for (int i = 1; i < fan_out_width; ++i)
        peers.start(
            [](std::string name, std::int64_t size, std::int64_t count, ipc::Event gate, int done_fd) {
                boost::interprocess::message_queue queue(boost::interprocess::open_only, name.c_str());
                const Bytes message(static_cast<std::size_t>(size));
                gate.wait();
                for (std::int64_t i = 0; i < count; ++i) queue.send(message.data(), message.size(), 0);
                queue.send(message.data(), 0, 0);
                done(done_fd);
            },
            std::string(name.c_str()), size, state.max_iterations, gate, peers.done_fd());
    const Bytes message(static_cast<std::size_t>(size));
    gate.set();
    auto left = state.max_iterations;
    for (auto _ : state) {
        queue.send(message.data(), message.size(), 0);
        if (--left == 0) {
            queue.send(message.data(), 0, 0);
            peers.wait_done();
        }
    }
    set_throughput(state, size, fan_out_width);
}

void same_process_memcpy(benchmark::State& state, std::int64_t size) {
    const Bytes from(static_cast<std::size_t>(size), std::byte{1});
    Bytes to(from.size());
    for (auto _ : state) {
        std::memcpy(to.data(), from.data(), to.size());
        benchmark::DoNotOptimize(to.data());
        benchmark::ClobberMemory();
    }
    set_throughput(state, size);
}

void kernel_pipe_round_trip(benchmark::State& state, bool busy_polled) {
    const auto reading = busy_polled ? Reading::busy_polled : Reading::blocking;
    Buffer buffer;
    auto [from_child, to_parent] = kernel_pipe_ends(&buffer);
    auto [from_parent, to_child] = kernel_pipe_ends();
    buffer.report(state);
    if (busy_polled) {
        make_nonblocking(from_child.get());
        make_nonblocking(from_parent.get());
    }
    Peers peers;
    peers.start(echo_fd, from_parent.get(), to_parent.get(), state.max_iterations, reading);
    round_trip(state, to_child.get(), from_child.get(), reading);
}

void kernel_pipe_round_trip_streaming(benchmark::State& state) {
    BackgroundPeers load;
    {
        auto [reader, writer] = kernel_pipe_ends();
        // Each side closes the end it does not use; a message whose first byte is 1 ends the stream.
        load.start(
            [](int reader, int writer, const std::atomic<int>*, int done_fd) {
                ::close(writer);
                Bytes buffer(background_stream_size);
                do read_exactly(reader, buffer.data(), buffer.size());
                while (buffer.front() == std::byte{0});
                done(done_fd);
            },
            reader.get(), writer.get());
        load.start(
            [](int reader, int writer, const std::atomic<int>* stop, int done_fd) {
                ::close(reader);
                Bytes message(background_stream_size);
                while (stop->load(std::memory_order_relaxed) == 0) write_all(writer, message.data(), message.size());
                message.front() = std::byte{1};
                write_all(writer, message.data(), message.size());
                done(done_fd);
            },
            reader.get(), writer.get());
    }
    kernel_pipe_round_trip(state, false);
    load.finish();
}

void unix_socketpair_round_trip(benchmark::State& state, bool busy_polled) {
    const auto reading = busy_polled ? Reading::busy_polled : Reading::blocking;
    Buffer buffer;
    auto [mine, theirs] = socketpair_ends(&buffer);
    buffer.report(state);
    if (busy_polled) {  // writes of 8 bytes never find a 1 MiB buffer full, so they need no retry
        make_nonblocking(mine.get());
        make_nonblocking(theirs.get());
    }
    Peers peers;
    peers.start(echo_fd, theirs.get(), theirs.get(), state.max_iterations, reading);
    round_trip(state, mine.get(), mine.get(), reading);
}

}  // namespace bench
