// pool/pool_core.cpp — the parent side of a Pool: a handler thread that dispatches tasks to the
// workers through their links (pool/worker_links.hpp) and reads the inbox, where results and the
// workers' ends arrive.
//
// One thread decides everything, in inbox order: a dead worker's results were posted before it
// died, so they are read before the message about its death, and its slot then tells exactly which
// task it was running (that one fails) and which it never started (those are sent again).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "ipc/detail/pool_call.hpp"
#include "ipc/detail/pool_core.hpp"
#include "ipc/detail/pool_jobs.hpp"
#include "ipc/queues.hpp"
#include "pool/protocol.hpp"
#include "pool/worker_links.hpp"
#include "sys/sigpipe.hpp"

namespace ipc::detail {

void post_event(QueueCore& inbox, InboxKind kind, std::uint32_t worker, std::uint64_t generation) {
    // One buffer per thread, kept: the watcher posts a death right before the handler forks a
    // replacement, and a free() racing that fork could leave a sanitizer's allocator locked.
    thread_local std::vector<std::byte> message;
    message.clear();
    codec::Writer writer(message);
    codec::save(writer, InboxHeader{kind, worker, 0, generation});
    inbox.put(message, true, Deadline::never(), false);
}

namespace {

/// At most this many tasks wait in one worker's pipe: enough to keep a worker busy between the
/// handler's visits, few enough that the last tasks do not queue behind one slow worker.
constexpr std::size_t max_window = 64;
/// A worker that dies before running any task this many times in a row (per worker slot) means
/// the pool cannot start workers: it fails its work instead of restarting them forever.
constexpr int max_failed_starts = 3;
/// How far a feeder reads ahead of an imap's consumer while the pool runs: chunks per worker, as
/// many as the handler keeps in flight per worker (max_window).
constexpr std::size_t chunks_ahead_per_worker = max_window;
/// How long a feeder's batch waits for more of a slow input before it goes.
constexpr auto batch_time = std::chrono::milliseconds(1);
/// How often a feeder waiting for the consumer looks whether the pool was closed or terminated.
constexpr auto feeder_look = std::chrono::milliseconds(50);

struct Task {
    std::uint64_t id = 0;
    std::shared_ptr<JobBase> job;
    std::size_t chunk = 0;
    std::vector<std::byte> message;

    /// What the task takes of its pipe's ring, with room for the record header and alignment.
    [[nodiscard]] std::size_t footprint() const noexcept { return message.size() + 128; }
};

struct Worker {
    std::deque<Task> in_flight;  // sent, in the order the worker runs them
    std::size_t in_flight_bytes = 0;
    std::uint64_t assigned = 0;  // tasks sent to this incarnation (for maxtasksperchild)
    std::uint64_t generation = 0;
    bool running = false;    // started, and its end not yet handled
    bool accepting = false;  // takes tasks (false after a failed send or the stop message)
    int failed_starts = 0;   // deaths in a row before running any task
};

enum class State { run, close, terminate };

}  // namespace

struct PoolCore::Impl {
    Impl(PoolSettings settings, const std::vector<std::byte>& initializer, const WorkerLinksFactory& make_links)
        : settings(settings),
          inbox{std::make_shared<QueueCore>(0, std::size_t{1} << 20, ElementType::of<PoolInbox>())},
          links(make_links(settings, initializer, inbox)),
          workers(static_cast<std::size_t>(settings.processes)) {}

    PoolSettings settings;
    InboxHandle inbox;
    std::unique_ptr<WorkerLinks> links;

    // Shared with the callers' threads.
    std::mutex mutex;
    State state = State::run;
    std::deque<Task> submitted;
    std::exception_ptr broken;  // set once: the pool cannot run work any more
    std::uint64_t next_task = 1;
    bool wake_posted = false;
    bool handler_done = false;  // the handler thread returned (join() may join it without waiting)
    // The threads reading calls' inputs (feed); a closed pool keeps its workers while one reads.
    struct Feeder {
        std::thread thread;
        std::shared_ptr<std::atomic<bool>> done;
    };
    std::vector<Feeder> feeders;
    std::size_t feeding = 0;  // feeders still reading
    std::condition_variable handler_finished;

    // The handler thread's own (the constructor's before the thread starts).
    std::vector<Worker> workers;
    std::deque<Task> pending;  // not yet sent, oldest first
    bool stop_sent = false;

    const pid_t owner = ::getpid();  // only this process has the threads and the jobs

    /// A forked child has a copy of the Pool but none of its threads: its calls would wait forever.
    void check_owner(const char* operation) const {
        if (::getpid() != owner)
            throw ProcessError(std::string("Pool.") + operation +
                               "(): a Pool can be used only by the process that created it (pid " +
                               std::to_string(owner) + "), not by a child");
    }
    std::thread handler;

    void post(InboxKind kind) { post_event(*inbox.core, kind); }

    void start() {
        try {
            for (std::uint32_t index = 0; index < workers.size(); ++index) start_worker(index);
            links->begin_watching();
            handler = std::thread([this] { run_handler(); });
        } catch (...) {
            // Not a pool after all (out of descriptors, processes or threads at any step): the
            // workers already started, and the watcher, must not outlive this constructor.
            links->stop_watching();
            shut_down(nullptr);
            throw;
        }
    }

    void start_worker(std::uint32_t index) {
        auto& worker = workers[index];
        links->start(index, worker.generation + 1);
        worker.in_flight.clear();
        worker.in_flight_bytes = 0;
        worker.assigned = 0;
        ++worker.generation;
        worker.running = true;
        worker.accepting = true;
    }

    // ---- the handler thread ----

    void run_handler() {
        // It writes to the workers through the links; a dead worker is reported, never a SIGPIPE.
        block_sigpipe_for_good();
        try {
            while (handle(inbox.core->get(true, Deadline::never()))) {
            }
        } catch (...) {
            {
                std::lock_guard lock(mutex);
                if (!broken) broken = std::current_exception();
            }
            shut_down(broken);
        }
        std::lock_guard lock(mutex);
        handler_done = true;
        handler_finished.notify_all();
    }

    /// Handles one inbox message; false when the handler is done.
    bool handle(std::span<const std::byte> message) {
        codec::Reader reader(message);
        const auto header = codec::load<InboxHeader>(reader);
        switch (header.kind) {
        case InboxKind::result:
        case InboxKind::task_failed:
            on_result(header, reader);
            break;
        case InboxKind::init_failed:
            on_init_failed(header, reader);
            break;
        case InboxKind::died:
            on_died(header.worker, header.generation);
            break;
        case InboxKind::wake:
            break;
        case InboxKind::stop:
            shut_down(std::make_exception_ptr(ProcessError("Pool: terminated before this task finished")));
            return false;
        }
        State current;
        std::exception_ptr failure;
        {
            std::lock_guard lock(mutex);
            std::move(submitted.begin(), submitted.end(), std::back_inserter(pending));
            submitted.clear();
            wake_posted = false;
            current = state;
            failure = broken;
        }
        if (failure) mark_broken(failure);  // tasks sent again after a death, too
        dispatch();
        return current == State::run || !finish_closing();
    }

    void on_result(const InboxHeader& header, codec::Reader& reader) {
        auto& worker = workers.at(header.worker);
        auto found = std::find_if(worker.in_flight.begin(), worker.in_flight.end(),
                                  [&](const Task& task) { return task.id == header.task; });
        if (found == worker.in_flight.end()) return;  // failed already (terminate) or not ours
        Task task = std::move(*found);
        worker.in_flight.erase(found);
        worker.in_flight_bytes -= task.footprint();
        worker.failed_starts = 0;
        try {
            if (header.kind == InboxKind::result) {
                task.job->chunk_done(task.chunk, reader);
            } else {
                task.job->chunk_failed(task.chunk, remote_exception(codec::load<RemoteFailure>(reader)));
            }
        } catch (...) {
            // Results that do not decode as the caller's type: that call fails, the pool goes on.
            task.job->chunk_failed(task.chunk, std::current_exception());
        }
    }

    void on_init_failed(const InboxHeader& header, codec::Reader& reader) {
        const auto failure = codec::load<RemoteFailure>(reader);
        mark_broken(std::make_exception_ptr(ProcessError(
            "Pool: the initializer failed in worker " + links->name(header.worker) + " with " + failure.type + ": " +
            failure.message)));
    }

    void on_died(std::uint32_t index, std::uint64_t generation) {
        auto& worker = workers.at(index);
        if (worker.generation != generation || !worker.running) return;
        const auto end = links->ended(index);
        if (!end) return;
        const int exitcode = end->exitcode;
        const auto slot = end->slot;
        const std::string& who = end->who;

        std::deque<Task> unstarted;
        std::vector<Task> running;
        for (auto& task : worker.in_flight) {
            if (slot_is_running(slot, task.id)) {
                running.push_back(std::move(task));
            } else {
                unstarted.push_back(std::move(task));
            }
        }
        pending.insert(pending.begin(), std::make_move_iterator(unstarted.begin()), std::make_move_iterator(unstarted.end()));
        worker.in_flight.clear();
        worker.in_flight_bytes = 0;
        worker.running = false;
        worker.accepting = false;

        if (slot == 0 && exitcode != 0 && ++worker.failed_starts >= max_failed_starts) {
            mark_broken(std::make_exception_ptr(
                ProcessError(who + " before running a task, " + std::to_string(max_failed_starts) +
                             " times in a row; the pool gives up")));
        }
        if (wants_replacement()) {
            try {
                start_worker(index);
            } catch (...) {
                mark_broken(std::current_exception());
            }
        }
        // Failed only now: whoever learns of the death finds the pool whole again, and a caller's
        // thread that wakes to it is not allocating while the replacement forks (a sanitizer's
        // allocator, unlike glibc's, is not made safe across fork).
        for (auto& task : running)
            task.job->chunk_failed(task.chunk,
                                   std::make_exception_ptr(WorkerDiedError(who + " while running this task", exitcode)));
    }

    [[nodiscard]] bool wants_replacement() {
        std::lock_guard lock(mutex);
        if (broken || state == State::terminate) return false;
        return state == State::run || !pending.empty() || !submitted.empty() || feeding != 0;
    }

    [[nodiscard]] bool still_feeding() {
        std::lock_guard lock(mutex);
        return feeding != 0;
    }

    /// Queues chunks `first`, `first + 1`, … of `job`; `continuing` (a feeder's) also once the pool
    /// is closed. False when the pool takes no more work (then the chunks failed with its error,
    /// or, for a new call, ValueError).
    bool enqueue(const std::shared_ptr<JobBase>& job, std::size_t first, std::vector<std::vector<std::byte>> chunks,
                 bool continuing) {
        std::exception_ptr failure;
        bool wake = false;
        {
            std::lock_guard lock(mutex);
            const bool open = state == State::run || (continuing && state == State::close);
            if (!open && !continuing) throw ValueError("Pool not running: it was closed or terminated");
            failure = broken;
            if (!open && !failure)
                failure = std::make_exception_ptr(ProcessError("Pool: terminated before this task was sent"));
            if (!failure) {
                for (std::size_t i = 0; i < chunks.size(); ++i) {
                    Task task{next_task++, job, first + i, std::move(chunks[i])};
                    std::memcpy(task.message.data(), &task.id, sizeof task.id);
                    submitted.push_back(std::move(task));
                }
                wake = !std::exchange(wake_posted, true);
            }
        }
        if (failure) {
            for (std::size_t i = 0; i < chunks.size(); ++i) job->chunk_failed(first + i, failure);
            return false;
        }
        if (wake) post(InboxKind::wake);
        return true;
    }

    /// A feeder's thread: reads chunks while the pool takes them, keeping ahead of the consumer,
    /// and queues them in batches (one wake-up of the handler each), each sent once it is full or
    /// has waited batch_time for a slow input.
    void run_feeder(const std::shared_ptr<JobBase>& job, const ChunkSource& source) {
        const auto ahead = static_cast<std::size_t>(settings.processes) * chunks_ahead_per_worker;
        std::size_t fed = 0;
        std::exception_ptr error;
        for (bool input_left = true; input_left;) {
            State current = State::run;
            std::size_t room = 0;
            while ((current = current_state()) == State::run && (room = job->room_to_feed(fed, ahead, feeder_look)) == 0) {
            }
            if (current == State::terminate) {
                error = std::make_exception_ptr(ProcessError("Pool: terminated before the whole input was read"));
                break;
            }
            if (current == State::close) room = ahead;  // join() waits for the input: read on regardless
            std::vector<std::vector<std::byte>> batch;
            const auto started = std::chrono::steady_clock::now();
            while (batch.size() < room && (batch.empty() || std::chrono::steady_clock::now() - started < batch_time)) {
                std::optional<std::vector<std::byte>> chunk;
                try {
                    chunk = source();
                } catch (...) {
                    error = std::current_exception();
                }
                if (!chunk) {
                    input_left = false;
                    break;
                }
                batch.push_back(std::move(*chunk));
            }
            const auto count = batch.size();
            const bool taken = count == 0 || enqueue(job, fed, std::move(batch), true);
            fed += count;  // chunks the pool refused have failed: they count, each with its outcome
            if (!taken) break;
        }
        job->input_ended(fed, error);
        {
            std::lock_guard lock(mutex);
            --feeding;
        }
        try {
            post(InboxKind::wake);  // a closed pool may be done now
        } catch (...) {
            // The inbox is shared memory in this process; failing to post means it is gone too.
        }
    }

    State current_state() {
        std::lock_guard lock(mutex);
        return state;
    }

    /// Joins the feeders that are done (all of them, waiting, when `all`).
    void join_feeders(bool all) {
        std::vector<Feeder> finished;
        {
            std::lock_guard lock(mutex);
            auto done = std::partition(feeders.begin(), feeders.end(),
                                       [&](const Feeder& feeder) { return !all && !feeder.done->load(); });
            std::move(done, feeders.end(), std::back_inserter(finished));
            feeders.erase(done, feeders.end());
        }
        for (auto& feeder : finished) feeder.thread.join();
    }

    /// From now on every call fails with `error`: the queued ones now, later ones at submission.
    void mark_broken(std::exception_ptr error) {
        std::deque<Task> failed;
        {
            std::lock_guard lock(mutex);
            if (!broken) broken = error;
            error = broken;
            failed.swap(submitted);
        }
        std::move(pending.begin(), pending.end(), std::back_inserter(failed));
        pending.clear();
        for (auto& task : failed) task.job->chunk_failed(task.chunk, error);
    }

    [[nodiscard]] std::size_t window() const noexcept {
        const std::size_t share = pending.size() / (2 * workers.size());
        return 1 + std::min(share, max_window - 1);
    }

    [[nodiscard]] bool has_room(const Worker& worker, const Task& task, std::size_t window) const noexcept {
        if (!worker.running || !worker.accepting) return false;
        if (settings.maxtasksperchild && worker.assigned >= settings.maxtasksperchild) return false;
        if (worker.in_flight.empty()) return true;  // it is reading, so even a large task streams through
        // Otherwise only what fits: the handler must never block on a busy worker's pipe, since that
        // worker may itself wait for the handler to read the inbox.
        return worker.in_flight.size() < window && worker.in_flight_bytes + task.footprint() <= max_in_flight_bytes;
    }

    void dispatch() {
        while (!pending.empty()) {
            const std::size_t limit = window();
            Worker* best = nullptr;
            for (auto& worker : workers) {
                if (has_room(worker, pending.front(), limit) && (!best || worker.in_flight.size() < best->in_flight.size()))
                    best = &worker;
            }
            if (!best) return;
            Task task = std::move(pending.front());
            pending.pop_front();
            if (!links->send(static_cast<std::uint32_t>(best - workers.data()), task.message)) {
                // The worker is gone; its death message will come. The task was not delivered.
                best->accepting = false;
                pending.push_front(std::move(task));
                continue;
            }
            best->in_flight_bytes += task.footprint();
            ++best->assigned;
            best->in_flight.push_back(std::move(task));
        }
    }

    /// After close(): once all work is done, tells the workers to exit; true when they all have.
    bool finish_closing() {
        const bool busy = !pending.empty() || std::any_of(workers.begin(), workers.end(), [](const Worker& worker) {
            return !worker.in_flight.empty();
        });
        if (busy || still_feeding()) return false;
        if (!stop_sent) {
            stop_sent = true;
            std::vector<std::byte> stop(task_header_size);
            std::memcpy(stop.data(), &stop_task, sizeof stop_task);
            for (std::uint32_t index = 0; index < workers.size(); ++index) {
                auto& worker = workers[index];
                if (!worker.running || !worker.accepting) continue;
                worker.accepting = false;
                links->send(index, stop);  // false: already gone, and its death message ends it the same way
            }
        }
        return std::none_of(workers.begin(), workers.end(), [](const Worker& worker) { return worker.running; });
    }

    /// terminate(), or the handler failing: stop every worker now and fail all unfinished work.
    void shut_down(const std::exception_ptr& error) {
        links->stop_running();
        std::deque<Task> unfinished;
        {
            std::lock_guard lock(mutex);
            state = State::terminate;
            unfinished.swap(submitted);
        }
        std::move(pending.begin(), pending.end(), std::back_inserter(unfinished));
        pending.clear();
        for (auto& worker : workers) {
            std::move(worker.in_flight.begin(), worker.in_flight.end(), std::back_inserter(unfinished));
            worker.in_flight.clear();
        }
        if (error)
            for (auto& task : unfinished) task.job->chunk_failed(task.chunk, error);
        for (auto& worker : workers) worker.running = false;
    }
};

namespace {
PoolSettings checked(PoolSettings settings) {
    if (settings.processes < 1)
        throw ValueError("Pool: the number of processes must be at least 1 (got " + std::to_string(settings.processes) + ")");
    return settings;
}
}  // namespace

PoolCore::PoolCore(PoolSettings settings, std::vector<std::byte> initializer, const WorkerLinksFactory& links)
    : settings_(checked(settings)), impl_(std::make_unique<Impl>(settings_, initializer, links)) {
    impl_->start();
}

PoolCore::~PoolCore() {
    if (::getpid() != impl_->owner) {
        // A forked child's copy: its threads exist only in the parent, so it is left as it is (a
        // std::thread that looks joinable must not be destroyed).
        [[maybe_unused]] auto* copy = impl_.release();
        return;
    }
    try {
        terminate();
    } catch (...) {
        // A destructor must not throw; terminate() only fails when the system does.
    }
}

void PoolCore::submit(const std::shared_ptr<JobBase>& job, std::vector<std::vector<std::byte>> chunks) {
    impl_->check_owner("submit");
    impl_->enqueue(job, 0, std::move(chunks), false);
}

void PoolCore::feed(const std::shared_ptr<JobBase>& job, ChunkSource source) {
    auto& impl = *impl_;
    impl.check_owner("imap");
    impl.join_feeders(false);
    auto done = std::make_shared<std::atomic<bool>>(false);
    std::lock_guard lock(impl.mutex);
    if (impl.state != State::run) throw ValueError("Pool not running: it was closed or terminated");
    ++impl.feeding;
    try {
        impl.feeders.push_back({std::thread([&impl, job, source = std::move(source), done] {
                                    impl.run_feeder(job, source);
                                    done->store(true);
                                }),
                                done});
    } catch (...) {
        --impl.feeding;
        throw;
    }
}

void PoolCore::check_owner(const char* operation) const { impl_->check_owner(operation); }

void PoolCore::close() {
    impl_->check_owner("close");
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->state != State::run) return;
        impl_->state = State::close;
    }
    impl_->post(InboxKind::wake);
}

void PoolCore::terminate() {
    auto& impl = *impl_;
    impl.check_owner("terminate");
    if (impl.handler.joinable()) {
        impl.post(InboxKind::stop);
        impl.handler.join();
    }
    {
        std::lock_guard lock(impl.mutex);
        impl.state = State::terminate;
    }
    impl.join_feeders(true);
    impl.links->stop_watching();
}

bool PoolCore::join(const Deadline& deadline) {
    auto& impl = *impl_;
    impl.check_owner("join");
    {
        std::unique_lock lock(impl.mutex);
        if (impl.state == State::run) throw ValueError("Pool.join(): call close() or terminate() first");
        if (!wait_for_state(impl.handler_finished, lock, deadline, [&] { return impl.handler_done; })) return false;
    }
    if (impl.handler.joinable()) impl.handler.join();
    impl.join_feeders(true);
    impl.links->stop_watching();
    return true;
}

}  // namespace ipc::detail
