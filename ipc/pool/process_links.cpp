// pool/process_links.cpp — a Pool's workers as processes on this machine: each started by the
// pool's start method with a task pipe of its own, and watched through its sentinel by a thread
// that posts its end to the inbox.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "ipc/connection.hpp"
#include "ipc/process.hpp"
#include "pool/worker_links.hpp"
#include "process/registry.hpp"
#include "sys/fd.hpp"

namespace ipc::detail {

namespace {

/// Each worker's task pipe: room for what the engine keeps in flight, and a stop message.
constexpr std::size_t task_pipe_capacity = 2 * max_in_flight_bytes;

std::string describe_exit(int exitcode) {
    if (exitcode < 0) {
        const char* name = sigabbrev_np(-exitcode);
        return "was killed by signal " + std::to_string(-exitcode) + (name ? std::string(" (SIG") + name + ")" : "");
    }
    return "exited with code " + std::to_string(exitcode);
}

const char* worker_name_prefix(StartMethod method) {
    switch (method) {
    case StartMethod::spawn: return "SpawnPoolWorker-";
    case StartMethod::forkserver: return "ForkServerPoolWorker-";
    case StartMethod::fork: break;
    }
    return "ForkPoolWorker-";
}

/// Reports each watched worker's exit once, by calling `report` from its own thread.
class DeathWatch {
public:
    using Report = std::function<void(std::uint32_t index, std::uint64_t generation)>;

    explicit DeathWatch(Report report) : report_(std::move(report)), control_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
        if (!control_) throw_os_error("eventfd", "Pool watcher");
        thread_ = std::thread([this] { run(); });
    }
    ~DeathWatch() { stop(); }

    /// Watches a worker through its own copy of the worker's sentinel.
    void watch(std::uint32_t index, std::uint64_t generation, int sentinel) {
        Fd fd(::fcntl(sentinel, F_DUPFD_CLOEXEC, 0));
        if (!fd) throw_os_error("dup", "a Pool worker's sentinel");
        {
            std::lock_guard lock(mutex_);
            entries_.push_back({index, generation, std::move(fd)});
        }
        nudge();
    }
    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        nudge();
        if (thread_.joinable()) thread_.join();
    }

private:
    struct Entry {
        std::uint32_t index;
        std::uint64_t generation;
        Fd pidfd;
    };

    void nudge() noexcept {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto written = ::write(control_.get(), &one, sizeof one);
    }

    void run() {
        std::vector<pollfd> fds;
        std::vector<std::pair<std::uint32_t, std::uint64_t>> ids;
        for (;;) {
            fds.assign(1, pollfd{control_.get(), POLLIN, 0});
            ids.clear();
            {
                std::lock_guard lock(mutex_);
                if (stopping_) return;
                for (const auto& entry : entries_) {
                    fds.push_back(pollfd{entry.pidfd.get(), POLLIN, 0});
                    ids.emplace_back(entry.index, entry.generation);
                }
            }
            if (::poll(fds.data(), fds.size(), -1) < 0) continue;  // EINTR
            if (fds[0].revents) {
                std::uint64_t count;
                [[maybe_unused]] auto got = ::read(control_.get(), &count, sizeof count);
            }
            for (std::size_t i = 1; i < fds.size(); ++i) {
                if (!fds[i].revents) continue;
                {
                    std::lock_guard lock(mutex_);
                    std::erase_if(entries_, [&](const Entry& entry) {
                        return entry.index == ids[i - 1].first && entry.generation == ids[i - 1].second;
                    });
                }
                report_(ids[i - 1].first, ids[i - 1].second);
            }
        }
    }

    Report report_;
    Fd control_;
    std::mutex mutex_;
    std::vector<Entry> entries_;
    bool stopping_ = false;
    std::thread thread_;
};

class ProcessLinks final : public WorkerLinks {
public:
    ProcessLinks(const PoolSettings& settings, const std::vector<std::byte>& initializer, const InboxHandle& inbox)
        : settings_(settings),
          initializer_(initializer),
          inbox_(inbox),
          slots_(static_cast<std::size_t>(settings.processes)),
          workers_(static_cast<std::size_t>(settings.processes)) {}
    ~ProcessLinks() override { stop_watching(); }

    void start(std::uint32_t index, std::uint64_t generation) override {
        auto& worker = workers_.at(index);
        auto [reader, writer] = Pipe(false, task_pipe_capacity);
        std::atomic_ref<std::uint64_t>(slots_[index]).store(0, std::memory_order_relaxed);
        ProcessOptions options{worker_name_prefix(settings_.start_method) + std::to_string(++started_), true,
                               settings_.start_method};
        Process process(std::move(options), &pool_worker_main, index, reader, inbox_, slots_, initializer_,
                        settings_.maxtasksperchild);
        {
            ForkWarningSuppressed pool_threads_expect_it;
            process.start();
        }
        reader.close();  // the worker holds it now: when the worker dies, sends fail instead of piling up
        worker.process = std::move(process);
        worker.tasks = std::move(writer);
        worker.generation = generation;
        if (watch_) watch(index);  // none yet while the pool starts
    }

    void begin_watching() override {
        // The threads start after the first forks: a thread that allocates while another forks
        // leaves the child a locked allocator under the sanitizers (glibc's malloc guards against
        // that). A worker that died meanwhile is reported at once, its sentinel being readable.
        watch_.emplace([inbox = inbox_.core](std::uint32_t index, std::uint64_t generation) {
            try {
                post_event(*inbox, InboxKind::died, index, generation);
            } catch (...) {
                // The inbox is shared memory in this process; failing to post means it is gone too.
            }
        });
        for (std::uint32_t index = 0; index < workers_.size(); ++index)
            if (workers_[index].process) watch(index);
    }

    [[nodiscard]] std::string name(std::uint32_t index) const override {
        const auto& worker = workers_.at(index);
        return worker.process ? worker.process->name() : "#" + std::to_string(index);
    }

    bool send(std::uint32_t index, std::span<const std::byte> message) override {
        try {
            workers_.at(index).tasks->send_bytes(message);
            return true;
        } catch (const Error&) {
            return false;  // the worker is gone; its death message will come
        }
    }

    std::optional<WorkerEnd> ended(std::uint32_t index) override {
        auto& worker = workers_.at(index);
        if (!worker.process->join(std::chrono::nanoseconds(0))) {
            // Its sentinel woke for a forkserver that died, not for its own end: from now on the
            // sentinel is the worker's pidfd, so watch that.
            watch(index);
            return std::nullopt;
        }
        WorkerEnd end;
        end.exitcode = worker.process->exitcode().value_or(255);
        end.slot = std::atomic_ref<std::uint64_t>(slots_[index]).load(std::memory_order_acquire);
        end.who = "Pool worker " + worker.process->name() + " (pid " + std::to_string(worker.process->pid().value_or(0)) +
                  ") " + describe_exit(end.exitcode);
        worker.tasks.reset();
        worker.process->close();
        worker.process.reset();
        return end;
    }

    void stop_running() override {
        for (auto& worker : workers_)
            if (worker.process) worker.process->terminate();
        for (auto& worker : workers_) {
            if (!worker.process) continue;
            // A worker whose own code catches SIGTERM gets a second and then SIGKILL.
            if (!worker.process->join(std::chrono::seconds(1))) {
                worker.process->kill();
                worker.process->join();
            }
        }
    }

    void stop_watching() override {
        if (watch_) watch_->stop();
    }

private:
    struct Worker {
        std::optional<Process> process;
        std::optional<Connection> tasks;  // the parent's writing end of this worker's pipe
        std::uint64_t generation = 0;
    };

    void watch(std::uint32_t index) {
        watch_->watch(index, workers_[index].generation, workers_[index].process->sentinel());
    }

    PoolSettings settings_;
    std::vector<std::byte> initializer_;
    InboxHandle inbox_;
    RawArray<std::uint64_t> slots_;
    std::vector<Worker> workers_;
    std::uint64_t started_ = 0;
    std::optional<DeathWatch> watch_;
};

}  // namespace

std::unique_ptr<WorkerLinks> make_process_links(const PoolSettings& settings, const std::vector<std::byte>& initializer,
                                                const InboxHandle& inbox) {
    return std::make_unique<ProcessLinks>(settings, initializer, inbox);
}

}  // namespace ipc::detail
