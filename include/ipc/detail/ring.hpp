// ipc/detail/ring.hpp — the message ring under Pipe and Queue: variable-size records in a byte ring
// in shared memory, published by a release store, so a killed sender never leaves a torn message.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "ipc/detail/ring_lock.hpp"
#include "ipc/detail/wait.hpp"

namespace ipc::detail {

/// The processes that hold one end of a channel, so a reader can tell "no writer is left" (EOF)
/// from "no message yet", also when a holder died without closing.
struct alignas(64) Holders {
    static constexpr std::size_t slot_count = 128;
    std::atomic<std::uint32_t> pid[slot_count];

    /// Claims a slot for `owner`; false when all are taken by live processes.
    bool add(std::uint32_t owner) noexcept;
    void remove(std::uint32_t owner) noexcept;
    /// True while some live process other than `except` holds the end (0: count everyone).
    [[nodiscard]] bool any_alive(std::uint32_t except = 0) const noexcept;
    /// A slot that names a process, alive or not (no look at /proc, so cheap); null when none does.
    [[nodiscard]] const std::atomic<std::uint32_t>* first_listed() const noexcept;
};

/// Every record starts with this header, at a 64-byte boundary: it never wraps.
struct RecordHeader {
    static constexpr std::uint32_t first = 1, last = 2, abort = 4;
    std::uint32_t chunk;  // payload bytes in this record
    std::uint32_t flags;
    std::uint64_t total;  // the whole message's size (in every chunk, so a reader can check early)
};
static_assert(sizeof(RecordHeader) == 16);

/// Records start on their own cache line: a sender writing the next record never touches the line
/// a receiver right behind it is reading (which would cost a cache-line round trip per message).
inline constexpr std::uint64_t record_alignment = 64;
constexpr std::uint64_t record_footprint(std::uint64_t chunk) noexcept {
    return (sizeof(RecordHeader) + chunk + record_alignment - 1) & ~(record_alignment - 1);
}

/// How far ahead of its record a sender asks for lines (two per record): measured best at 256.
inline constexpr std::uint64_t prefetch_distance = 256;

/// Asks for a line in the state a store needs (exclusive). GCC's __builtin_prefetch(p, 1) is a read
/// prefetch unless the build targets PRFCHW, and a line fetched shared still waits for ownership at
/// the store; PREFETCHW decodes as a no-op on x86-64 CPUs that lack it.
inline void prefetch_for_write(const void* line) noexcept {
#if defined(__x86_64__)
    asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(line)));
#else
    __builtin_prefetch(line, 1);
#endif
}

/// How one side's waits pace their looks at the other side's line (see wait_for in ring.cpp): how
/// many waits in a row ended while spinning, and how many it takes to let a batch gather first.
struct WaitPace {
    std::uint16_t spin_finds = 0;
    std::uint16_t needed = 0;
};

/// A multi-producer, multi-consumer ring of messages. One sender and one receiver at a time hold
/// the ring (robust, sticky locks), so messages stay whole and in order; a message larger than half
/// the ring streams through it in chunks, and a reader drops the rest of one whose sender died.
///
/// The layout is the speed: while messages flow, a sender writes its own line and the one `tail`
/// lives on, and reads only its own; a receiver likewise. Each side remembers its last look at the
/// other's position and looks again only when that is used up, and neither side runs a locked
/// instruction or a full fence per message (the sleeping side pays, see fence.hpp), so the stores
/// of one message stream out while the next is written.
struct alignas(64) RingState {
    RingLock send_lock;
    RingLock receive_lock;
    // Read-only after creation.
    alignas(64) std::uint64_t capacity = 0;  // a power of two, at least 4096
    std::uint32_t max_messages = 0;          // a Queue's maxsize; 0: only bytes limit it
    // Who may wait on the readiness descriptors, so that they are signalled only then: `pollers`
    // gets fileno_poller once someone asked fileno() (for good: poll(2) users never say when they
    // stop), and loop_poller for each event loop (ipc/asio.hpp) while it watches; `space_pollers`
    // counts event loops waiting for room.
    static constexpr std::uint32_t fileno_poller = 1, loop_poller = 2;
    std::atomic<std::uint32_t> pollers{0};
    std::atomic<std::uint32_t> space_pollers{0};
    // Published by the sender that holds send_lock; read by receivers.
    alignas(64) std::atomic<std::uint64_t> tail{0};  // bytes published, ever
    std::atomic<std::uint32_t> data_signal{0};       // bumped to wake sleeping receivers
    std::atomic<std::uint32_t> receivers_sleeping{0};  // a flag: some receiver may sleep
    // The senders' own line.
    alignas(64) std::atomic<std::uint64_t> sent{0};  // complete messages published, ever
    std::atomic<std::uint32_t> streaming{0};         // a sender is between the chunks of one message
    std::uint64_t sender_seen_head = 0;
    std::uint64_t sender_seen_received = 0;
    WaitPace sender_pace;
    // What the sender is about to publish, written first; between calls it equals tail and sent,
    // so a sender works from here and never reads the line receivers read. A sender that takes the
    // lock over from a dead one finishes the counter if the position was published but the counter
    // not yet, and forgets a record that was not published.
    std::atomic<std::uint64_t> journal_tail{0};
    std::atomic<std::uint64_t> journal_sent{0};
    // Published by the receiver that holds receive_lock; read by senders when their last look at
    // it says the ring is full.
    alignas(64) std::atomic<std::uint64_t> head{0};  // bytes consumed, ever
    std::atomic<std::uint64_t> received{0};          // complete messages consumed (or dropped), ever
    std::atomic<std::uint32_t> space_signal{0};      // bumped to wake sleeping senders
    std::atomic<std::uint32_t> senders_sleeping{0};    // a flag: some sender may sleep
    // The receivers' own line.
    alignas(64) std::uint64_t receiver_seen_tail = 0;
    WaitPace receiver_pace;
    std::atomic<std::uint64_t> journal_head{0};
    std::atomic<std::uint64_t> journal_received{0};

    RingState(std::uint64_t bytes, std::uint32_t maxsize) : capacity(bytes), max_messages(maxsize) {}
    [[nodiscard]] std::byte* data() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
    static std::size_t size_for(std::uint64_t capacity) noexcept { return sizeof(RingState) + capacity; }
    /// The ring size for a requested capacity: a power of two from 4 KiB to 4 GiB. `what` names
    /// the object in the ValueError for a larger request.
    static std::uint64_t capacity_for(std::size_t requested, const char* what);
    /// True when any message that does not stream fits now (half the ring is free).
    [[nodiscard]] bool half_free() const noexcept {
        return tail.load(std::memory_order_acquire) - head.load(std::memory_order_acquire) <= capacity / 2;
    }
    /// Messages waiting (Queue.qsize): may be stale by the time the caller looks.
    [[nodiscard]] std::uint64_t waiting() const noexcept {
        const auto out = received.load(std::memory_order_acquire);
        const auto in = sent.load(std::memory_order_acquire);
        return in > out ? in - out : 0;
    }
};

/// Asks for the two lines `prefetch_distance` beyond a record of `footprint` bytes at `tail`, in the
/// state a store needs, within the `free` bytes known free: the receiver read those lines a lap
/// ago, and a store that waits for its line holds up every store behind it; a line the receiver
/// still reads would go back and forth. (As many lines as each record takes measured no better
/// for 1 KiB messages.)
inline void prefetch_ahead(RingState& ring, std::uint64_t tail, std::uint64_t footprint, std::uint64_t free) noexcept {
    if (free < footprint + prefetch_distance + 2 * record_alignment) return;
    const auto ahead = tail + footprint + prefetch_distance;
    prefetch_for_write(ring.data() + (ahead & (ring.capacity - 1)));
    prefetch_for_write(ring.data() + ((ahead + record_alignment) & (ring.capacity - 1)));
}

/// Copies `size` bytes into the ring at `position`, going on at the ring's start past its end.
/// (The usual case, no wrap, is one memcpy of `size`: inlined with a size known to the compiler, a
/// tag or a count is one move.)
inline void copy_in(RingState& ring, std::uint64_t position, const void* source, std::size_t size) noexcept {
    if (size == 0) return;  // an empty message's buffer may have no storage at all
    const auto offset = position & (ring.capacity - 1);
    if (size <= ring.capacity - offset) {
        std::memcpy(ring.data() + offset, source, size);
        return;
    }
    const auto first_part = ring.capacity - offset;
    std::memcpy(ring.data() + offset, source, first_part);
    std::memcpy(ring.data(), static_cast<const std::byte*>(source) + first_part, size - first_part);
}

/// Copies `size` bytes out of the ring from `position` (see copy_in).
inline void copy_out(RingState& ring, std::uint64_t position, void* target, std::size_t size) noexcept {
    if (size == 0) return;
    const auto offset = position & (ring.capacity - 1);
    if (size <= ring.capacity - offset) {
        std::memcpy(target, ring.data() + offset, size);
        return;
    }
    const auto first_part = ring.capacity - offset;
    std::memcpy(target, ring.data() + offset, first_part);
    std::memcpy(static_cast<std::byte*>(target) + first_part, ring.data(), size - first_part);
}

/// Publishes what the send lock's holder wrote: the journal first (see RingState), then the
/// positions receivers read.
inline void publish_records(RingState& ring, std::uint64_t tail, std::uint64_t sent) noexcept {
    ring.journal_tail.store(tail, std::memory_order_relaxed);
    ring.journal_sent.store(sent, std::memory_order_release);
    ring.tail.store(tail, std::memory_order_release);  // the publish
    ring.sent.store(sent, std::memory_order_release);
}

/// Frees what the receive lock's holder read, in the same order.
inline void retire_records(RingState& ring, std::uint64_t head, std::uint64_t received) noexcept {
    ring.journal_head.store(head, std::memory_order_relaxed);
    ring.journal_received.store(received, std::memory_order_release);
    ring.head.store(head, std::memory_order_release);
    ring.received.store(received, std::memory_order_release);
}

/// Whether a receive that moved the head to `head` freed enough to wake senders that sleep for
/// room (`seen_tail`: the receiver's last look at tail): half the ring, so that every record fits,
/// or a place under a Queue's maxsize. So a sleeping sender wakes once per many messages.
inline bool room_for_senders(const RingState& ring, std::uint64_t seen_tail, std::uint64_t head) noexcept {
    return seen_tail - head <= ring.capacity / 2 || (ring.max_messages != 0 && ring.waiting() < ring.max_messages);
}

enum class RingResult { done, timed_out, peer_gone };

/// `immediate` is for callers that wait in an event loop (ipc/asio.hpp) and must never block: the
/// call takes the ring's lock only if it is free (or its holder died), neither spins nor sleeps,
/// and says timed_out when it would have to wait. A sender that finds no room leaves the
/// senders' sleeping flag raised, so the receiver that frees room reports it (Received::woke_senders).
enum class RingWait { block, immediate };

/// The largest message that crosses as one record; larger ones stream in chunks.
inline std::uint64_t ring_max_unstreamed(const RingState& ring) noexcept {
    // A chunk plus the room kept for an abort record fits in half the ring.
    return ring.capacity / 2 - record_footprint(0) - record_alignment;
}

/// A message in up to three parts, sent as one: a value's tag, element count and bytes come
/// straight from the value (codec::FlatMessage), however large, without a buffer in between.
using MessageParts = std::array<std::span<const std::byte>, 3>;

[[nodiscard]] inline std::uint64_t message_size(const MessageParts& parts) noexcept {
    return parts[0].size() + parts[1].size() + parts[2].size();
}

/// Sends one message. `receivers` (may be null) lets a sender fail when nobody can read any more.
RingResult ring_send(RingState& ring, const MessageParts& message, const Deadline& deadline, const Holders* receivers,
                     RingWait wait = RingWait::block);

/// What ring_receive did: `refused` when the message is larger than `max_size` (it stays in the
/// ring, and `size` says how large it is); peer_gone when the ring is empty and no sender lives.
struct Received {
    RingResult result = RingResult::done;
    bool refused = false;
    std::uint64_t size = 0;
    bool woke_senders = false;  // the receive freed room for senders that said they wait
};

/// Receives one message into `out` (resized to fit). `senders` may be null (no EOF for a Queue).
/// With RingWait::immediate, the rest of a message that streams is still awaited: its sender
/// holds the ring and is writing it.
Received ring_receive(RingState& ring, std::vector<std::byte>& out, const Deadline& deadline, const Holders* senders,
                      std::uint64_t max_size, RingWait wait = RingWait::block);

/// Frees the ring's locks if this thread keeps one between calls (an end or queue handle closing).
void ring_let_go(RingState& ring) noexcept;

/// True when a message can be received without blocking; never consumes.
bool ring_poll(RingState& ring, const Deadline& deadline, const Holders* senders);

}  // namespace ipc::detail
