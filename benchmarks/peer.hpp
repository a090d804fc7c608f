// benchmarks/peer.hpp — what every cross-process benchmark shares: peers in forked children that die
// with the benchmark, a "done" signal that ends the timing when the last message is consumed, counters.
#pragma once

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <ipc/process.hpp>

namespace bench {

/// The message sizes every throughput case runs at.
inline constexpr std::array<std::int64_t, 5> sizes{8, 64, 1 << 10, 64 << 10, 1 << 20};

/// Senders and receivers of the many-to-many cases (4 → 4).
inline constexpr int fan_out_width = 4;

/// The buffer every channel gets, whatever carries it: the ring of an ipc Pipe or Queue by default.
inline constexpr int channel_buffer = 1 << 20;

/// "64", "1Ki", "1Mi": the size part of a case's name, as the report and the Python peers spell it.
inline std::string size_name(std::int64_t size) {
    if (size >= (1 << 20) && size % (1 << 20) == 0) return std::to_string(size >> 20) + "Mi";
    if (size >= (1 << 10) && size % (1 << 10) == 0) return std::to_string(size >> 10) + "Ki";
    return std::to_string(size);
}

/// Registers `function(state, args...)` as `name`, timed by the wall clock (the work happens in more
/// than one process). An exception skips the case with its message instead of ending the run.
template <class Function, class... Args>
benchmark::internal::Benchmark* add(const std::string& name, Function function, Args... args) {
    return benchmark::RegisterBenchmark(
               name.c_str(),
               [function](benchmark::State& state, Args... given) {
                   try {
                       function(state, given...);
                   } catch (const std::exception& e) {
                       state.SkipWithError(e.what());
                   }
               },
               args...)
        ->UseRealTime();
}

[[noreturn]] inline void fail(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

/// Children that run one side of a case. Each dies with the benchmark process (an interrupted run
/// must leave no child blocked in a receive: Boost's message_queue would wait there forever), and
/// each writes one byte to a shared kernel pipe when its side is finished.
class Peers {
public:
    Peers() {
        if (::pipe2(done_, O_CLOEXEC) != 0) fail("pipe2");
    }
    Peers(const Peers&) = delete;
    Peers& operator=(const Peers&) = delete;
    ~Peers() {
        for (auto& child : children_) {
            if (!child.join(std::chrono::seconds(10))) {
                child.kill();
                child.join();
            }
        }
        ::close(done_[0]);
        ::close(done_[1]);
    }

    /// Starts `target(args...)` in a forked child; the target calls done(fd) when finished, with
    /// the fd given by done_fd().
    template <class Target, class... Args>
    void start(Target target, Args... args) {
        const pid_t parent = ::getpid();
        ipc::Process child({.start_method = ipc::StartMethod::fork},
                           [target, parent](Args... given) {
                               ::prctl(PR_SET_PDEATHSIG, SIGKILL);
                               if (::getppid() != parent) return;  // the benchmark already ended
                               target(std::move(given)...);
                           },
                           std::move(args)...);
        child.start();
        children_.push_back(std::move(child));
    }

    [[nodiscard]] int done_fd() const noexcept { return done_[1]; }

    /// Waits until every peer has said it is done; an error when one ended without saying so.
    void wait_done() {
        std::vector<ipc::Process> running = children_;
        for (std::size_t missing = children_.size(); missing > 0;) {
            std::vector<pollfd> fds{{done_[0], POLLIN, 0}};
            for (const auto& child : running) fds.push_back({child.sentinel(), POLLIN, 0});
            if (::poll(fds.data(), fds.size(), -1) < 0) {
                if (errno == EINTR) continue;
                fail("poll");
            }
            if (fds[0].revents & POLLIN) {
                char bytes[16];
                const auto got = ::read(done_[0], bytes, std::min(sizeof bytes, missing));
                if (got < 0 && errno != EINTR) fail("read");
                if (got > 0) missing -= static_cast<std::size_t>(got);
                continue;
            }
            // A child's end counts only once its byte (written before it ended) has been read.
            std::erase_if(running, [&](const ipc::Process& child) {
                return std::any_of(fds.begin() + 1, fds.end(),
                                   [&](const pollfd& fd) { return fd.fd == child.sentinel() && fd.revents; });
            });
            if (running.size() < missing) throw std::runtime_error("a peer process ended before finishing its side");
        }
    }

private:
    int done_[2] = {-1, -1};
    std::vector<ipc::Process> children_;
};

/// Peers that run in the background for as long as a case runs, until told to stop through a flag
/// in memory they share with the benchmark (MAP_SHARED): each loops while `stop` is 0.
class BackgroundPeers {
public:
    BackgroundPeers() {
        void* page = ::mmap(nullptr, sizeof(std::atomic<int>), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED) fail("mmap");
        stop_ = std::construct_at(static_cast<std::atomic<int>*>(page), 0);
    }
    BackgroundPeers(const BackgroundPeers&) = delete;
    BackgroundPeers& operator=(const BackgroundPeers&) = delete;
    /// A case that failed still stops its background at once (the peers are joined next).
    ~BackgroundPeers() {
        stop_->store(1, std::memory_order_relaxed);
        peers_.reset();
        ::munmap(stop_, sizeof *stop_);
    }

    /// Starts `target(args..., stop, done_fd)` in a forked child.
    template <class Target, class... Args>
    void start(Target target, Args... args) {
        peers_->start(target, args..., static_cast<const std::atomic<int>*>(stop_), peers_->done_fd());
    }
    /// Stops them; an error if one of them failed.
    void finish() {
        stop_->store(1, std::memory_order_relaxed);
        peers_->wait_done();
    }

private:
    std::atomic<int>* stop_ = nullptr;
    std::optional<Peers> peers_{std::in_place};
};

/// The load of "latency under load": a second pair of processes that streams messages of this
/// size while a round trip is measured beside it.
inline constexpr std::int64_t background_stream_size = 1 << 20;

/// Called by a peer when its side is finished.
inline void done(int fd) {
    const char byte = 1;
    while (::write(fd, &byte, 1) < 0 && errno == EINTR) {
    }
}

/// The benchmark loop of a sending side: `send()` once per iteration; in the last one, waits until
/// the peers are done, so the time covers every message received, not just sent.
template <class Send>
void send_loop(benchmark::State& state, Peers& peers, Send send) {
    auto left = state.max_iterations;
    for (auto _ : state) {
        send();
        if (--left == 0) peers.wait_done();
    }
}

/// Messages/s and bytes/s of `messages_per_iteration` messages of `size` bytes per iteration.
inline void set_throughput(benchmark::State& state, std::int64_t size, std::int64_t messages_per_iteration = 1) {
    state.SetItemsProcessed(state.iterations() * messages_per_iteration);
    state.SetBytesProcessed(state.iterations() * messages_per_iteration * size);
}

/// The time of each iteration of a round-trip loop, for the median and the 99th percentile.
class Laps {
public:
    explicit Laps(benchmark::IterationCount count) { laps_.reserve(static_cast<std::size_t>(count)); }
    /// Call once before the loop and once at the end of each iteration: one clock read per lap.
    void lap() {
        const auto now = std::chrono::steady_clock::now();
        if (started_) laps_.push_back(static_cast<float>(std::chrono::duration<double, std::micro>(now - last_).count()));
        last_ = now;
        started_ = true;
    }
    /// Counters median_us and p99_us.
    void report(benchmark::State& state) {
        if (laps_.empty()) return;
        auto at = [&](double quantile) {
            auto nth = laps_.begin() + static_cast<std::ptrdiff_t>(quantile * static_cast<double>(laps_.size() - 1));
            std::nth_element(laps_.begin(), nth, laps_.end());
            return static_cast<double>(*nth);
        };
        state.counters["median_us"] = at(0.5);
        state.counters["p99_us"] = at(0.99);
        state.SetItemsProcessed(state.iterations());
    }

private:
    std::vector<float> laps_;
    std::chrono::steady_clock::time_point last_;
    bool started_ = false;
};

}  // namespace bench
