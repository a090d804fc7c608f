// benchmarks/shared_memory_handoff.cpp — shared memory instead of messages: a writer fills a slot of a
// SharedMemory block and signals a Semaphore; the reader copies the slot out and frees it.
#include <algorithm>
#include <cstring>
#include <vector>

#include <ipc/ipc.hpp>

#include "cases.hpp"
#include "peer.hpp"

namespace bench {
namespace {

/// As many slots as fill the buffer the message channels get, and at least two, so that the writer
/// fills one while the reader empties another.
std::int64_t slots_for(std::int64_t size) { return std::max<std::int64_t>(2, channel_buffer / size); }

/// Slot after slot, round the block.
class Slots {
public:
    Slots(const ipc::SharedMemory& block, std::int64_t size)
        : first_(block.buf().data()), size_(static_cast<std::size_t>(size)), count_(slots_for(size)) {}
    std::byte* next() noexcept {
        auto* slot = first_ + static_cast<std::size_t>(index_) * size_;
        index_ = index_ + 1 == count_ ? 0 : index_ + 1;
        return slot;
    }

private:
    std::byte* first_;
    std::size_t size_;
    std::int64_t count_;
    std::int64_t index_ = 0;
};

void read_slots(ipc::SharedMemory block, ipc::Semaphore full, ipc::Semaphore empty, std::int64_t size,
                std::int64_t count, int done_fd) {
    std::vector<std::byte> copy(static_cast<std::size_t>(size));
    Slots slots(block, size);
    for (std::int64_t i = 0; i < count; ++i) {
        full.acquire();
        std::memcpy(copy.data(), slots.next(), copy.size());
        benchmark::DoNotOptimize(copy.data());
        empty.release();
    }
    done(done_fd);
}

}  // namespace

void shared_memory_handoff(benchmark::State& state, std::int64_t size) {
    const auto slots = slots_for(size);
    ipc::SharedMemory block(static_cast<std::size_t>(slots * size));
    ipc::Semaphore full(0);
    ipc::Semaphore empty(static_cast<unsigned>(slots));
    Peers peers;
    peers.start(read_slots, block, full, empty, size, state.max_iterations, peers.done_fd());
    const std::vector<std::byte> message(static_cast<std::size_t>(size), std::byte{1});
    Slots next_slot(block, size);
    send_loop(state, peers, [&] {
        empty.acquire();
        std::memcpy(next_slot.next(), message.data(), message.size());
        full.release();
    });
    set_throughput(state, size);
}

}  // namespace bench
