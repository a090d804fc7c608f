// mpi/rank_links.cpp — an mpi::Pool's workers as the other ranks of the job: tasks go out as
// nonblocking sends, and a receiver thread puts every reply of this pool (results, failures, a
// worker leaving) into the pool's inbox, where the engine reads it as it reads a local worker's.
#include <atomic>
#include <cstdio>
#include <limits>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "ipc/error.hpp"
#include "ipc/queues.hpp"
#include "mpi/rank_links.hpp"
#include "mpi/world.hpp"

namespace ipc::mpi::detail {

namespace {

using ipc::detail::InboxHandle;
using ipc::detail::PoolSettings;
using ipc::detail::WorkerEnd;

class RankLinks final : public ipc::detail::WorkerLinks {
public:
    RankLinks(const PoolSettings& settings, const std::vector<std::byte>& initializer, const InboxHandle& inbox)
        : settings_(settings), initializer_(initializer), inbox_(inbox) {
        if (world().pool_alive.exchange(true))
            throw ValueError("ipc::mpi::Pool: another mpi::Pool holds the worker ranks; end it (join or terminate, "
                             "then let it go) before making this one");
        pool_ = ++world().pools_made;
        try {
            receiver_ = std::thread([this] { receive_replies(); });
        } catch (...) {
            world().pool_alive.store(false);
            throw;
        }
    }
    ~RankLinks() override {
        stop_watching();
        world().pool_alive.store(false);
        // Sends still on their way belong to the job now: it completes them before MPI_Finalize.
        auto& state = world();
        for (auto& [request, buffer] : sends_) {
            state.leftover_sends.push_back(request);
            state.leftover_buffers.push_back(std::move(buffer));
        }
    }

    void start(std::uint32_t index, std::uint64_t generation) override {
        Start start{pool_, generation, index, settings_.maxtasksperchild, initializer_};
        send_message(index, start_tag, std::make_shared<std::vector<std::byte>>(ipc::encode(start)));
    }

    void begin_watching() override {}

    [[nodiscard]] std::string name(std::uint32_t index) const override {
        const int rank = static_cast<int>(index) + 1;
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
    }

private:
    void send_message(std::uint32_t index, int tag, std::shared_ptr<std::vector<std::byte>> buffer) {
        if (buffer->size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
            throw ValueError("ipc::mpi::Pool: a task of " + std::to_string(buffer->size()) +
                             " bytes is larger than one MPI message may be (2 GiB); use a smaller chunksize");
        std::lock_guard lock(sends_mutex_);
        reap_sends();
        MPI_Request request;
        check(MPI_Isend(buffer->data(), static_cast<int>(buffer->size()), MPI_BYTE, static_cast<int>(index) + 1, tag,
                        world().comm, &request),
              "MPI_Isend");
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
        std::vector<std::byte> buffer;
        try {
            for (;;) {
                MPI_Message message;
                MPI_Status status;
                if (!wait_message(world().comm, MPI_ANY_SOURCE, reply_tag, message, status,
                                  [this] { return stopping_.load(); }))
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
            std::fprintf(stderr, "ipc::mpi::Pool: receiving the workers' replies failed: %s\n", error.what());
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }

    PoolSettings settings_;
    std::vector<std::byte> initializer_;
    InboxHandle inbox_;
    std::uint64_t pool_ = 0;
    std::mutex sends_mutex_;
    std::vector<std::pair<MPI_Request, std::shared_ptr<std::vector<std::byte>>>> sends_;
    std::atomic<bool> stopping_{false};
    std::thread receiver_;
};

}  // namespace

std::unique_ptr<ipc::detail::WorkerLinks> make_rank_links(const PoolSettings& settings,
                                                          const std::vector<std::byte>& initializer,
                                                          const InboxHandle& inbox) {
    return std::make_unique<RankLinks>(settings, initializer, inbox);
}

}  // namespace ipc::mpi::detail
