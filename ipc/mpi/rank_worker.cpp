// mpi/rank_worker.cpp — a worker rank: serves rank 0's pools one after another (each starts with a
// Start message), running each task as a local Pool worker does and sending the outcome back,
// until rank 0 ends the job.
#include <cstring>
#include <optional>

#include "mpi/world.hpp"
#include "pool/protocol.hpp"
#include "pool/worker_links.hpp"

namespace ipc::mpi::detail {

namespace {

using ipc::detail::InboxHeader;
using ipc::detail::InboxKind;

class RankWorker {
public:
    explicit RankWorker(MPI_Comm comm) : comm_(comm) {}

    void serve() {
        for (;;) {
            MPI_Message message;
            MPI_Status status;
            wait_message(comm_, 0, MPI_ANY_TAG, message, status, [] { return false; },
                         serving_ ? Patience::expecting : Patience::idle);
            receive(message, status, buffer_);
            switch (status.MPI_TAG) {
            case exit_tag:
                check(MPI_Send(nullptr, 0, MPI_BYTE, 0, bye_tag, comm_), "MPI_Send");
                return;
            case start_tag:
                begin(ipc::decode<Start>(buffer_));
                break;
            case task_tag:
                run();
                break;
            default:
                break;  // not ipc's: nothing else is sent on this communicator
            }
        }
    }

private:
    struct Serving {
        std::uint64_t pool;
        std::uint64_t generation;
        std::uint32_t index;
        std::uint64_t maxtasks;
        std::uint64_t done = 0;
    };

    void begin(const Start& start) {
        serving_ = Serving{start.pool, start.generation, start.index, start.maxtasks};
        if (const auto failure = ipc::detail::run_initializer(start.initializer)) {
            codec::Writer writer(start_reply());
            codec::save(writer, InboxHeader{InboxKind::init_failed, start.index, 0, 0});
            codec::save(writer, *failure);
            send_reply();
            leave();
        }
    }

    void run() {
        std::uint64_t pool = 0;
        if (buffer_.size() < sizeof pool) return;
        std::memcpy(&pool, buffer_.data(), sizeof pool);
        if (!serving_ || pool != serving_->pool) return;  // a pool that ended (terminate): dropped
        const auto task = ipc::detail::run_task(std::span<const std::byte>(buffer_).subspan(sizeof pool),
                                                serving_->index, start_reply());
        if (task == ipc::detail::stop_task) return leave();
        send_reply();
        if (serving_->maxtasks && ++serving_->done >= serving_->maxtasks) leave();
    }

    /// Tells the pool this worker left it (as a local worker's exit does).
    void leave() {
        codec::Writer writer(start_reply());
        codec::save(writer, InboxHeader{InboxKind::died, serving_->index, 0, serving_->generation});
        send_reply();
        serving_.reset();
    }

    /// The reply buffer, holding this pool's id; the inbox message is appended to it in place.
    std::vector<std::byte>& start_reply() {
        out_.resize(sizeof(std::uint64_t));
        std::memcpy(out_.data(), &serving_->pool, sizeof(std::uint64_t));
        return out_;
    }

    void send_reply() {
        check(MPI_Send(out_.data(), static_cast<int>(out_.size()), MPI_BYTE, 0, reply_tag, comm_), "MPI_Send");
    }

    MPI_Comm comm_;
    std::optional<Serving> serving_;
    std::vector<std::byte> buffer_, out_;
};

}  // namespace

void serve_pools(MPI_Comm comm) { RankWorker(comm).serve(); }

}  // namespace ipc::mpi::detail
