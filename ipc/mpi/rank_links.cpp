// mpi/rank_links.cpp — an mpi::Pool's workers as the other ranks of the job, or as ranks the pool
// spawned (and ends with itself): tasks go out as nonblocking sends, and a receiver thread puts
// every reply of this pool (results, failures, a worker leaving) into the pool's inbox, where the
// engine reads it as it reads a local worker's.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "ipc/error.hpp"
#include "ipc/queues.hpp"
#include "mpi/rank_links.hpp"
#include "mpi/world.hpp"
#include "sys/fd.hpp"

namespace ipc::mpi::detail {

namespace {

using ipc::detail::InboxHandle;
using ipc::detail::PoolSettings;
using ipc::detail::WorkerEnd;

class RankLinks final : public ipc::detail::WorkerLinks {
public:
    /// `ranks` of the job are the workers; `exclusive`: no other pool may have them meanwhile.
    RankLinks(const PoolSettings& settings, const std::vector<std::byte>& initializer, const InboxHandle& inbox,
              const Ranks& ranks, bool exclusive)
        : settings_(settings), initializer_(initializer), inbox_(inbox), ranks_(ranks), exclusive_(exclusive) {
        if (exclusive_ && world().pool_alive.exchange(true))
            throw ValueError("ipc::mpi::Pool: another mpi::Pool holds the worker ranks; end it (join or terminate, "
                             "then let it go) before making this one");
        pool_ = ++world().pools_made;
        try {
            watch_spawned_here();
            receiver_ = std::thread([this] { receive_replies(); });
        } catch (...) {
            stop_watching();
            if (exclusive_) world().pool_alive.store(false);
            throw;
        }
    }
    ~RankLinks() override {
        stop_watching();
        std::vector<MPI_Request> requests;
        for (auto& send : sends_) requests.push_back(send.first);
        if (ranks_.spawned) {
            // This pool's own workers: they end with it.
            end_spawned(ranks_, settings_.processes, requests);
            return;
        }
        // Sends still on their way belong to the job now: it completes them before MPI_Finalize.
        auto& state = world();
        state.leftover_sends.insert(state.leftover_sends.end(), requests.begin(), requests.end());
        for (auto& send : sends_) state.leftover_buffers.push_back(std::move(send.second));
        if (exclusive_) state.pool_alive.store(false);
    }

    void start(std::uint32_t index, std::uint64_t generation) override {
        Start start{pool_, generation, index, settings_.maxtasksperchild, initializer_};
        send_message(index, start_tag, std::make_shared<std::vector<std::byte>>(ipc::encode(start)));
    }

    void begin_watching() override {}

    [[nodiscard]] std::string name(std::uint32_t index) const override {
        const int rank = ranks_.first + static_cast<int>(index);
        if (ranks_.spawned) return "spawned MPI rank " + std::to_string(rank);
        const auto& hosts = world().hosts;
        return "MPI rank " + std::to_string(rank) +
               (static_cast<std::size_t>(rank) < hosts.size() ? " on " + hosts[static_cast<std::size_t>(rank)] : "");
    }

    bool send(std::uint32_t index, std::span<const std::byte> message) override {
        auto buffer = std::make_shared<std::vector<std::byte>>(sizeof pool_ + message.size());
        std::memcpy(buffer->data(), &pool_, sizeof pool_);
        std::memcpy(buffer->data() + sizeof pool_, message.data(), message.size());
        send_message(index, task_tag, std::move(buffer));
        return true;  // a rank that died has ended the whole job
    }

    std::optional<WorkerEnd> ended(std::uint32_t index) override {
        return WorkerEnd{0, "Pool worker " + name(index) + " left the pool", 0};
    }

    void stop_running() override {
        // A rank cannot be stopped from here: each leaves this pool after the task it runs, and the
        // rest of this pool's tasks it receives are dropped.
        std::vector<std::byte> stop(ipc::detail::task_header_size);
        for (std::uint32_t index = 0; index < static_cast<std::uint32_t>(settings_.processes); ++index) send(index, stop);
    }

    void stop_watching() override {
        stopping_.store(true);
        if (receiver_.joinable()) receiver_.join();
        if (watcher_.joinable()) {
            const std::uint64_t one = 1;
            (void)::write(stop_watcher_.get(), &one, sizeof one);
            watcher_.join();
        }
    }

private:
    void send_message(std::uint32_t index, int tag, std::shared_ptr<std::vector<std::byte>> buffer) {
        if (buffer->size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
            throw ValueError("ipc::mpi::Pool: a task of " + std::to_string(buffer->size()) +
                             " bytes is larger than one MPI message may be (2 GiB); use a smaller chunksize");
        std::lock_guard lock(sends_mutex_);
        const ipc::detail::SigpipeBlocked dead_workers_are_errors;
        MPI_Request request;
        int code = MPI_SUCCESS;
        {
            const MpiCall call;
            reap_sends();
            code = MPI_Isend(buffer->data(), static_cast<int>(buffer->size()), MPI_BYTE,
                             ranks_.first + static_cast<int>(index), tag, ranks_.comm, &request);
        }
        if (code != MPI_SUCCESS) {
            // The usual reason, and then the message names the worker (its pidfd turns readable a
            // moment after its sockets closed).
            end_job_if_a_worker_died(std::chrono::seconds(1));
            check(code, ("MPI_Isend to " + name(index)).c_str());
        }
        sends_.emplace_back(request, std::move(buffer));
    }

    /// Frees the buffers of the sends that completed.
    void reap_sends() {
        std::erase_if(sends_, [](auto& send) {
            int done = 0;
            check(MPI_Test(&send.first, &done, MPI_STATUS_IGNORE), "MPI_Test");
            return done != 0;
        });
    }

    void receive_replies() {
        ipc::detail::block_sigpipe_for_good();
        std::vector<std::byte> buffer;
        try {
            for (;;) {
                MPI_Message message;
                MPI_Status status;
                if (!wait_message(ranks_.comm, MPI_ANY_SOURCE, reply_tag, message, status,
                                  [&] { return stopping_.load(); }))
                    return;
                receive(message, status, buffer);
                std::uint64_t pool = 0;
                if (buffer.size() < sizeof pool) continue;
                std::memcpy(&pool, buffer.data(), sizeof pool);
                if (pool != pool_) continue;  // an earlier pool's, finished after it was terminated
                inbox_.core->put(std::span<const std::byte>(buffer).subspan(sizeof pool), true,
                                 ipc::detail::Deadline::never(), false);
            }
        } catch (const std::exception& error) {
            // Without replies the pool would wait forever: end the job, saying why.
            end_job_if_a_worker_died(std::chrono::seconds(1));
            end_job(std::string("ipc::mpi::Pool: receiving the workers' replies failed: ") + error.what());
        }
    }

    /// Spawned workers on this machine are watched through pidfds, by a thread that never calls
    /// MPI: a spawned job whose worker died is ended by the MPI runtime without a word to this
    /// process, which would wait forever, and MPI calls that touch the dead peer may hang.
    void watch_spawned_here() {
        if (!ranks_.spawned) return;
        char here[MPI_MAX_PROCESSOR_NAME] = {};
        int length = 0;
        MPI_Get_processor_name(here, &length);
        for (std::size_t rank = 0; rank < ranks_.hellos.size(); ++rank) {
            const auto& hello = ranks_.hellos[rank];
            if (hello.host != here) continue;
            ipc::detail::Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, hello.pid, 0)));
            if (pidfd) watched_.push_back({static_cast<int>(rank), hello.pid, std::move(pidfd)});
        }
        if (watched_.empty()) return;
        stop_watcher_ = ipc::detail::Fd(::eventfd(0, EFD_CLOEXEC));
        if (!stop_watcher_) throw OSError("eventfd", "ipc::mpi::Pool's worker watcher", errno);
        watcher_ = std::thread([this] {
            while (!end_job_if_a_worker_died(std::chrono::milliseconds(-1))) {
            }
        });
    }

    /// As mpirun ends a job whose rank died, with a message naming it; waits up to `patience`
    /// (negative: until the watcher is stopped) for a death to show. False when none did.
    bool end_job_if_a_worker_died(std::chrono::milliseconds patience) {
        std::vector<pollfd> fds;
        for (const auto& worker : watched_) fds.push_back({worker.pidfd.get(), POLLIN, 0});
        if (fds.empty()) return false;
        fds.push_back({stop_watcher_.get(), POLLIN, 0});
        const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(patience.count()));
        if (ready < 0 && errno == EINTR) return false;
        if (ready < 0) throw OSError("poll", "ipc::mpi::Pool's spawned workers' pidfds", errno);
        for (std::size_t i = 0; i < watched_.size(); ++i) {
            if (fds[i].revents == 0) continue;
            end_job("ipc::mpi::Pool: spawned worker " + std::to_string(watched_[i].rank) + " (pid " +
                    std::to_string(watched_[i].pid) +
                    ") died while the pool ran; ending the job, as mpirun does when a rank dies");
        }
        return fds.back().revents != 0;
    }

    struct Watched {
        int rank;
        std::int32_t pid;
        ipc::detail::Fd pidfd;
    };

    PoolSettings settings_;
    std::vector<std::byte> initializer_;
    InboxHandle inbox_;
    Ranks ranks_;
    bool exclusive_;
    std::uint64_t pool_ = 0;
    std::mutex sends_mutex_;
    std::vector<std::pair<MPI_Request, std::shared_ptr<std::vector<std::byte>>>> sends_;
    std::vector<Watched> watched_;
    ipc::detail::Fd stop_watcher_;
    std::thread watcher_;
    std::atomic<bool> stopping_{false};
    std::thread receiver_;
};

}  // namespace

ipc::detail::WorkerLinksFactory rank_links() {
    return [](const PoolSettings& settings, const std::vector<std::byte>& initializer, const InboxHandle& inbox) {
        return std::make_unique<RankLinks>(settings, initializer, inbox, Ranks{world().comm, 1, false, {}}, true);
    };
}

ipc::detail::WorkerLinksFactory spawned_links() {
    return [](const PoolSettings& settings, const std::vector<std::byte>& initializer, const InboxHandle& inbox) {
        auto ranks = spawn_workers(settings.processes);
        try {
            return std::make_unique<RankLinks>(settings, initializer, inbox, ranks, false);
        } catch (...) {
            std::vector<MPI_Request> none;
            end_spawned(ranks, settings.processes, none);
            throw;
        }
    };
}

}  // namespace ipc::mpi::detail
