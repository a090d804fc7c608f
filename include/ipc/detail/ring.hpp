// ipc/detail/ring.hpp — the message ring under Pipe and Queue: variable-size records in a byte ring in
// shared memory, committed by a release store, so a killed sender never leaves a torn message.
//
// THE PROTOCOL
//
// Memory. A RingState (nine cache lines, below) followed by `capacity` bytes of data, a power of
// two. Positions count bytes ever written and never wrap: position p lives at data()[p & (capacity-1)].
// `tail` is where the next record goes, `head` where the next one to read starts; tail - head bytes
// are in use.
//
// Records. Each starts on a 64-byte boundary with a RecordHeader {chunk, flags, total}, then `chunk`
// payload bytes, padded to the next boundary (record_footprint). So a header never wraps (the data
// ends on a boundary); a payload may wrap around the data's end. A message of up to
// ring_max_unstreamed bytes is one record flagged first|last. A larger one streams: a first record,
// middle ones, a last one, each of at most ring_max_unstreamed bytes and each carrying the whole
// message's `total`; the receiver copies each out as it comes, so a message may be far larger than
// the ring.
//
// Who writes which line. One sender and one receiver at a time hold the ring, each by its RingLock
// (sticky: a thread that sends again and again keeps it between calls, see ring_lock.hpp).
//   lines 0-1  send_lock       taken by senders
//   lines 2-3  receive_lock    taken by receivers
//   line 4     constants       capacity and max_messages, written once at creation; `pollers` and
//                              `space_pollers` when someone starts or stops polling, `corrupt` and
//                              `shut_down` once in a ring's life (rare)
//   line 5     the senders' published line: `tail` (the commit), the receivers' wake-up word and
//              sleeping flag. Written by the sender once per message, read by receivers.
//   line 6     the senders' own line: counters, journal, the last look at the receivers' line.
//              Only the send lock's holder writes it (qsize() reads `sent`).
//   line 7     the receivers' published line: `head`, `received`, the senders' wake-up word and
//              sleeping flag. Read by senders only when their last look says the ring is full.
//   line 8     the receivers' own line, likewise.
// While messages flow, a sender writes its own line and `tail`'s, and reads only its own: it works
// from its last look at `head` until that look says the ring is full. Receivers do the same with
// `tail`. Neither side runs a locked instruction or a full fence per message.
//
// Commit. The send lock's holder writes a record's header and payload at journal_tail, then
// publishes (publish_records): the journal first, then `tail` with a release store — the commit —
// then `sent`. Receivers load `tail` with acquire and read only records wholly below it. A sender
// killed before the commit leaves nothing visible, and its journal, ahead of `tail`, tells the next
// sender to forget the record; one killed between `tail` and `sent` left `sent` one short, which the
// next sender completes from the journal. Receivers retire records in the same order
// (retire_records): journal, `head` (release), `received`.
//
// Abort. Every chunk of a stream but the last leaves room for one empty record behind it, so a
// stream can always be closed: a sender that gives up halfway (timeout, no reader left) writes an
// `abort` record; one that died halfway (`streaming` still set) has it written by the next sender
// that takes the lock over. A receiver drops the part of a message it has read when it meets an
// abort record, a record flagged `first` (a new message), or a send lock whose owner died; records
// at the head that are not `first` (the rest of a message whose receiver died) are skipped.
//
// Loans and views (zero copy). A sender may take the send lock, reserve a record's room at the tail
// and write the message there itself (ring_lend), then publish it as any other (ring_publish_loan);
// a loan that would wrap is preceded by a `padding` record that fills the ring to its end, which
// receivers skip. A lender killed before the commit left nothing published, as any sender. A
// receiver may keep the message at the head in place under the receive lock (ring_receive_view)
// until it retires it (ring_release_view); `viewer` says so, and a receiver that takes the lock
// over from a dead viewer retires that message: it was delivered once.
//
// Wake-ups. A side that found nothing spins briefly, then raises its sleeping flag, runs a heavy
// fence, looks once more, and sleeps on the other side's wake-up word. The other side publishes,
// runs a light fence (fence.hpp) and looks at the flag; if it is raised, the first waker lowers it,
// bumps the word and wakes the sleepers. One of the two fences always orders the other side's
// store before its own look, so no wake-up is lost, and while nobody sleeps a message costs the
// publisher one load of the flag.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ipc/detail/deadline.hpp"
#include "ipc/detail/evict.hpp"
#include "ipc/detail/fence.hpp"
#include "ipc/detail/ring_lock.hpp"
#include "ipc/detail/thread_id.hpp"

namespace ipc::detail {

struct Holders;  // shm/holders.hpp: the processes that hold one end of a channel

/// Every record starts with this header, at a 64-byte boundary: it never wraps. A `padding` record
/// fills the ring up to its end, so that a loan (a message written in place) is contiguous; its
/// `total` is the bytes it fills, header included.
struct RecordHeader {
    static constexpr std::uint32_t first = 1, last = 2, abort = 4, padding = 8;
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
/// The bytes a record (checked by the reader) takes in the ring.
constexpr std::uint64_t record_span(const RecordHeader& header) noexcept {
    return (header.flags & RecordHeader::padding) ? header.total : record_footprint(header.chunk);
}

/// How far ahead of its record a sender asks for lines (two per record).
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

/// How one side's waits pace their looks at the other side's line (see ring.cpp): how many waits
/// in a row ended while spinning, and how many it takes to let a batch gather first.
struct WaitPace {
    std::uint16_t spin_finds = 0;
    std::uint16_t needed = 0;
};

/// A multi-producer, multi-consumer ring of messages (see THE PROTOCOL above).
struct alignas(64) RingState {
    RingLock send_lock;
    RingLock receive_lock;
    // Constants, and who polls. `capacity` is read only when a process opens the ring (Ring::open).
    alignas(64) std::uint64_t capacity = 0;  // a power of two, at least 4096
    std::uint32_t max_messages = 0;          // a Queue's maxsize; 0: only bytes limit it
    // Set by whoever finds a field or record that breaks the protocol (another process wrote over
    // the ring): from then on every send and receive fails with CorruptSegmentError.
    std::atomic<std::uint32_t> corrupt{0};
    // Set by Queue.shutdown(): from then on no message begins (a send says shut_down, a stream
    // under way ends with an abort record), and a receive that finds the ring empty says shut_down.
    std::atomic<std::uint32_t> shut_down{0};
    // Who may wait on the readiness descriptors, so that they are signalled only then: `pollers`
    // gets fileno_poller once someone asked fileno() (for good: poll(2) users never say when they
    // stop), and loop_poller for each event loop (ipc/asio.hpp) while it watches; `space_pollers`
    // counts event loops waiting for room.
    static constexpr std::uint32_t fileno_poller = 1, loop_poller = 2;
    std::atomic<std::uint32_t> pollers{0};
    std::atomic<std::uint32_t> space_pollers{0};
    // The senders' published line.
    alignas(64) std::atomic<std::uint64_t> tail{0};    // bytes published, ever
    std::atomic<std::uint32_t> data_signal{0};         // bumped to wake sleeping receivers
    std::atomic<std::uint32_t> receivers_sleeping{0};  // a flag: some receiver may sleep
    // The senders' own line.
    alignas(64) std::atomic<std::uint64_t> sent{0};  // complete messages published, ever
    std::atomic<std::uint32_t> streaming{0};         // a sender is between the chunks of one message
    std::atomic<std::uint32_t> lender{0};            // the thread with a loan open (it holds the send lock)
    std::uint64_t sender_seen_head = 0;
    std::uint64_t sender_seen_received = 0;
    WaitPace sender_pace;
    // What the sender is about to publish, written first; between calls it equals tail and sent.
    std::atomic<std::uint64_t> journal_tail{0};
    std::atomic<std::uint64_t> journal_sent{0};
    // The receivers' published line.
    alignas(64) std::atomic<std::uint64_t> head{0};  // bytes consumed, ever
    std::atomic<std::uint64_t> received{0};          // complete messages consumed (or dropped), ever
    std::atomic<std::uint32_t> space_signal{0};      // bumped to wake sleeping senders
    std::atomic<std::uint32_t> senders_sleeping{0};  // a flag: some sender may sleep
    // The receivers' own line.
    alignas(64) std::uint64_t receiver_seen_tail = 0;
    WaitPace receiver_pace;
    // The thread holding a view of the message at the head (and the receive lock); a receiver
    // that takes the lock over from it skips that message, which was delivered.
    std::atomic<std::uint32_t> viewer{0};
    std::atomic<std::uint64_t> journal_head{0};
    std::atomic<std::uint64_t> journal_received{0};

    RingState(std::uint64_t bytes, std::uint32_t maxsize) : capacity(bytes), max_messages(maxsize) {}
    [[nodiscard]] std::byte* data() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
    static std::size_t size_for(std::uint64_t capacity) noexcept { return sizeof(RingState) + capacity; }
    /// The ring size for a requested capacity: a power of two from 4 KiB to 4 GiB. `what` names
    /// the object in the ValueError for a larger request.
    static std::uint64_t capacity_for(std::size_t requested, const char* what);
    /// Messages waiting (Queue.qsize): may be stale by the time the caller looks.
    [[nodiscard]] std::uint64_t waiting() const noexcept {
        const auto out = received.load(std::memory_order_acquire);
        const auto in = sent.load(std::memory_order_acquire);
        return in > out ? in - out : 0;
    }
};

// The layout the protocol relies on: each group on its own line, the data on a line boundary.
namespace ring_layout {
constexpr std::size_t line_of(std::size_t offset) noexcept { return offset / 64; }
static_assert(std::is_standard_layout_v<RingState>);
static_assert(sizeof(RingLock) == 128 && offsetof(RingState, receive_lock) == 128);
static_assert(line_of(offsetof(RingState, capacity)) == 4 && line_of(offsetof(RingState, space_pollers)) == 4);
static_assert(line_of(offsetof(RingState, tail)) == 5 && line_of(offsetof(RingState, receivers_sleeping)) == 5);
static_assert(line_of(offsetof(RingState, sent)) == 6 && line_of(offsetof(RingState, journal_sent)) == 6 &&
              line_of(offsetof(RingState, lender)) == 6);
static_assert(line_of(offsetof(RingState, head)) == 7 && line_of(offsetof(RingState, senders_sleeping)) == 7);
static_assert(line_of(offsetof(RingState, receiver_seen_tail)) == 8 && line_of(offsetof(RingState, viewer)) == 8 &&
              line_of(offsetof(RingState, journal_received)) == 8);
static_assert(sizeof(RingState) == 9 * 64, "the data starts on the line after the receivers' own");
}  // namespace ring_layout

/// A streamed message whose receive ran out of its caller's time before the rest came (a sender
/// frozen or slow halfway): the receiving thread keeps the receive lock, so that no other receiver
/// takes the rest for a new message, and goes on with it at its next receive. Closing the handle
/// drops it, as a receiver that dies drops what it had begun.
struct UnfinishedMessage {
    std::atomic<std::uint32_t> thread{0};  // the thread that holds it and the lock; 0: none
    std::uint64_t total = 0;
    std::vector<std::byte> bytes;  // the part received so far
};

/// One process's handle on a ring: the shared RingState, and the capacity this process checked
/// against its own mapping when it made or opened the segment. Every position is masked with that
/// capacity, never with one read from shared memory, so no byte another process writes can move an
/// access outside the mapping; `->` reaches the shared fields.
class Ring {
public:
    /// A ring this process just constructed in `state`.
    Ring(RingState& state, std::string name)
        : capacity(state.capacity), state_(&state), name_(std::move(name)),
          unfinished_(std::make_unique<UnfinishedMessage>()) {}
    /// The ring filling `area` (a RingState, then its data), made by another process: the capacity
    /// must be what the area holds, a power of two from 4 KiB to 4 GiB. `name` says whose ring it
    /// is, in errors (e.g. "Queue 'x'"). CorruptSegmentError otherwise.
    static Ring open(std::span<std::byte> area, std::string name);

    [[nodiscard]] RingState* operator->() const noexcept { return state_; }
    [[nodiscard]] std::byte* data() const noexcept { return state_->data(); }
    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    /// True when any message that does not stream fits now (half the ring is free).
    [[nodiscard]] bool half_free() const noexcept {
        return state_->tail.load(std::memory_order_acquire) - state_->head.load(std::memory_order_acquire) <= capacity / 2;
    }

    /// This process's receive that stopped halfway (only the receive lock's holder touches it).
    [[nodiscard]] UnfinishedMessage& unfinished() const noexcept { return *unfinished_; }

    const std::uint64_t capacity;

private:
    RingState* state_;
    std::string name_;
    std::unique_ptr<UnfinishedMessage> unfinished_;
};

/// Asks for the two lines `prefetch_distance` beyond a record of `footprint` bytes at `tail`, in the
/// state a store needs, within the `free` bytes known free: the receiver read those lines a lap
/// ago, and a store that waits for its line holds up every store behind it; a line the receiver
/// still reads would go back and forth.
inline void prefetch_ahead(const Ring& ring, std::uint64_t tail, std::uint64_t footprint, std::uint64_t free) noexcept {
    if (free < footprint + prefetch_distance + 2 * record_alignment) return;
    const auto ahead = tail + footprint + prefetch_distance;
    prefetch_for_write(ring.data() + (ahead & (ring.capacity - 1)));
    prefetch_for_write(ring.data() + ((ahead + record_alignment) & (ring.capacity - 1)));
}

/// Copies `size` bytes into the ring at `position`, going on at the ring's start past its end.
/// (The usual case, no wrap, is one memcpy of `size`: inlined with a size known to the compiler, a
/// tag or a count is one move.)
inline void copy_in(const Ring& ring, std::uint64_t position, const void* source, std::size_t size) noexcept {
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
inline void copy_out(const Ring& ring, std::uint64_t position, void* target, std::size_t size) noexcept {
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

/// The commit: publishes what the send lock's holder wrote, the journal first, then the positions
/// receivers read.
inline void publish_records(const Ring& ring, std::uint64_t tail, std::uint64_t sent) noexcept {
    ring->journal_tail.store(tail, std::memory_order_relaxed);
    ring->journal_sent.store(sent, std::memory_order_release);
    ring->tail.store(tail, std::memory_order_release);  // the commit
    ring->sent.store(sent, std::memory_order_release);
}

/// Frees what the receive lock's holder read, in the same order.
inline void retire_records(const Ring& ring, std::uint64_t head, std::uint64_t received) noexcept {
    ring->journal_head.store(head, std::memory_order_relaxed);
    ring->journal_received.store(received, std::memory_order_release);
    ring->head.store(head, std::memory_order_release);
    ring->received.store(received, std::memory_order_release);
}

/// Drops a small record the receiver has read from every cache (evict.hpp).
inline void evict_record(const Ring& ring, std::uint64_t position, std::uint64_t footprint) noexcept {
    evict_lines(ring.data(), ring.capacity - 1, position, footprint);
}

/// Whether a receive that moved the head to `head` freed enough to wake senders that sleep for
/// room (`seen_tail`: the receiver's last look at tail): half the ring, so that every record fits,
/// or a place under a Queue's maxsize. So a sleeping sender wakes once per many messages.
inline bool room_for_senders(const Ring& ring, std::uint64_t seen_tail, std::uint64_t head) noexcept {
    return seen_tail - head <= ring.capacity / 2 || (ring->max_messages != 0 && ring->waiting() < ring->max_messages);
}

/// Wakes whoever sleeps for a message, or for room (out of line: rare, and a system call). The
/// second says whether it woke someone, who may also wait outside the ring (a readiness descriptor).
void ring_wake_receivers(const Ring& ring) noexcept;
bool ring_wake_senders(const Ring& ring) noexcept;

/// shut_down: the ring was shut down (RingState::shut_down) and no message begins, or none is left.
enum class RingResult { done, timed_out, peer_gone, shut_down };

/// `immediate` is for callers that wait in an event loop (ipc/asio.hpp) and must never block: the
/// call takes the ring's lock only if it is free (or its holder died), neither spins nor sleeps,
/// and says timed_out when it would have to wait. A sender that finds no room leaves the
/// senders' sleeping flag raised, so the receiver that frees room reports it (Received::woke_senders).
enum class RingWait { block, immediate };

/// The largest message that crosses as one record; larger ones stream in chunks.
inline std::uint64_t ring_max_unstreamed(const Ring& ring) noexcept {
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
RingResult ring_send(const Ring& ring, const MessageParts& message, const Deadline& deadline, const Holders* receivers,
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
/// When the deadline passes while the rest of a streamed message is awaited, the call says
/// timed_out and the part stays with the calling thread (Ring::unfinished) for its next receive.
/// With RingWait::immediate, the rest of a message that streams is awaited: its sender holds the
/// ring and is writing it, and waits for room that only this receive makes.
Received ring_receive(const Ring& ring, std::vector<std::byte>& out, const Deadline& deadline, const Holders* senders,
                      std::uint64_t max_size, RingWait wait = RingWait::block);

/// Shuts the ring down (Queue.shutdown) and wakes everyone who waits on it, so that they see it.
/// Says whether this call did it (false: it was shut down already).
bool ring_shut_down(const Ring& ring) noexcept;
/// Drops every whole message waiting, under the receive lock, taken within `deadline`; says how
/// many, or nothing when the lock could not be had. A message still streaming in is left to its
/// sender, which ends it with an abort record once the ring is shut down.
std::optional<std::uint64_t> ring_drop_waiting(const Ring& ring, const Deadline& deadline);

/// Frees the ring's locks if this thread keeps one between calls (an end or queue handle closing).
void ring_let_go(const Ring& ring) noexcept;

/// True when a message can be received without blocking; never consumes.
bool ring_poll(const Ring& ring, const Deadline& deadline, const Holders* senders);

// LOANS AND VIEWS: a message written and read in place (zero copy).

/// The largest loan: a record that fits in the ring's half, as any message that does not stream.
inline std::uint64_t ring_max_loan(const Ring& ring) noexcept { return ring_max_unstreamed(ring); }

/// Room for one message reserved in the ring, contiguous, for the thread that asked (`thread`),
/// which holds the send lock until the loan is published or cancelled.
struct RingLoan {
    std::uint64_t position = 0;  // of the record's header
    std::uint64_t size = 0;      // bytes reserved
    std::byte* data = nullptr;   // where the caller writes them
    std::uint32_t thread = 0;
};

/// Reserves `size` bytes (at most ring_max_loan) for the calling thread, waiting for room as a
/// send does; nothing is visible to receivers until ring_publish_loan. A sender that dies with a
/// loan open leaves nothing behind: the next one takes the lock over and writes over the room.
RingResult ring_lend(const Ring& ring, std::uint64_t size, const Deadline& deadline, const Holders* receivers,
                     RingLoan& loan);
/// Publishes the first `size` bytes (at most loan.size) of the loan as one message and frees the
/// send lock. Says whether someone polls the ring (the caller signals them). Error when the loan's
/// thread ended and another sender took the ring over meanwhile.
bool ring_publish_loan(const Ring& ring, const RingLoan& loan, std::uint64_t size);
/// Gives the room back unpublished and frees the send lock.
void ring_cancel_loan(const Ring& ring, const RingLoan& loan) noexcept;

/// A whole message left in place at the head for the thread that received it (`thread`), which
/// holds the receive lock until ring_release_view.
struct RingView {
    std::uint64_t position = 0;  // of the record's header
    std::uint64_t size = 0;
    const std::byte* data = nullptr;
    std::uint32_t thread = 0;
};

/// ring_receive, but a message in one contiguous piece is left in place and described by `view`
/// (view.data set); any other (one that wraps around the ring's end, or streams) is copied into
/// `out` as ring_receive does (view.data stays null).
Received ring_receive_view(const Ring& ring, std::vector<std::byte>& out, RingView& view, const Deadline& deadline,
                           const Holders* senders, std::uint64_t max_size);
/// Frees the message of a view and the receive lock. `woke_senders` as in Received.
bool ring_release_view(const Ring& ring, const RingView& view) noexcept;

// THE FAST PATH
//
// The common send and receive, inline: a small message that needs no wait, from the thread that
// keeps the ring's lock, costs a dozen stores and no call. Why inline, always (GCC would rather
// call): the stores a call chain makes (return addresses, saved registers, arguments on the stack)
// wait in the CPU's store buffer, in order, behind the stores into the ring, whose lines must first
// come over from the receiver's CPU; once the buffer is full the sender stalls on every message.

/// What a fast path did. `taken_signal`: the message went, and someone polls the ring's readiness
/// descriptors (or an event loop waits for room that this receive made): the caller signals them.
enum class FastPath { not_taken, taken, taken_signal };

/// A message the fast send writes straight into the ring: `size()` bytes, which `write_to(target)`
/// writes into that much contiguous memory. Passed whole to the inlined send, so its parts stay in
/// registers: a list of spans copied through the stack is a failed store-to-load forward that waits
/// for every store into the ring to reach the receiver's CPU first.
template <class M>
concept RingMessage = requires(const M& message, std::byte* target) {
    { message.size() } noexcept -> std::convertible_to<std::uint64_t>;
    { message.write_to(target) } noexcept;
};

/// Raw bytes as a RingMessage (send_bytes, and an encoded message).
struct BytesMessage {
    std::span<const std::byte> bytes;
    [[nodiscard]] std::uint64_t size() const noexcept { return bytes.size(); }
    void write_to(std::byte* target) const noexcept {
        if (!bytes.empty()) std::memcpy(target, bytes.data(), bytes.size());  // an empty span may have no storage
    }
};

/// Sends a message that fits in one record, from the thread resting on the send lock, into room it
/// already knows is free and that does not wrap around the ring's end (about once per lap a send
/// takes the general way, which copies in two parts). not_taken: nothing was sent, take ring_send.
template <RingMessage Message>
[[gnu::always_inline]] inline FastPath ring_send_fast(const Ring& ring, const Message& message) noexcept {
    const std::uint64_t size = message.size();
    // A loan open: its thread must not write over it (the general way says so), others wait.
    if (size > ring_max_unstreamed(ring) || ring->lender.load(std::memory_order_relaxed) != 0) return FastPath::not_taken;
    if (!enter_resting(ring->send_lock, this_thread_id())) return FastPath::not_taken;
    const auto tail = ring->journal_tail.load(std::memory_order_relaxed);
    const auto sent = ring->sent.load(std::memory_order_relaxed);
    const auto footprint = record_footprint(size);
    // Also false when the positions say more than the ring is in use (corrupt): the general way
    // looks closer, and so does a ring marked corrupt.
    const auto used = tail - ring->sender_seen_head;
    const auto mask = ring.capacity - 1;
    const auto offset = tail & mask;
    if (used > ring.capacity - footprint || offset + sizeof(RecordHeader) + size > ring.capacity ||
        ring->corrupt.load(std::memory_order_relaxed) != 0 || ring->shut_down.load(std::memory_order_relaxed) != 0 ||
        (ring->max_messages != 0 && sent - std::min(sent, ring->sender_seen_received) >= ring->max_messages)) {
        exit_ring_lock(ring->send_lock);
        return FastPath::not_taken;
    }
    prefetch_ahead(ring, tail, footprint, ring.capacity - used);
    const RecordHeader header{static_cast<std::uint32_t>(size), RecordHeader::first | RecordHeader::last, size};
    std::memcpy(ring.data() + offset, &header, sizeof header);
    message.write_to(ring.data() + offset + sizeof header);
    publish_records(ring, tail + footprint, sent + 1);
    // After the commit, as in ring_send: a receiver about to sleep, or a poller that registers
    // now, pairs its heavy fence with this one, so one of the two sees the other.
    light_fence();
    if (ring->receivers_sleeping.load(std::memory_order_relaxed) != 0) ring_wake_receivers(ring);
    const bool signal = ring->pollers.load(std::memory_order_relaxed) != 0;
    exit_ring_lock(ring->send_lock);
    return signal ? FastPath::taken_signal : FastPath::taken;
}

/// A whole message in the ring, for a fast receive to copy out (in pieces, if it likes).
struct RecordView {
    const Ring& ring;
    std::uint64_t position;  // of the first byte after the header
    std::uint64_t size;
    void copy(std::uint64_t offset, void* target, std::size_t bytes) const noexcept {
        copy_out(ring, position + offset, target, bytes);
    }
    /// The whole message in place, or null when it wraps around the ring's end.
    [[nodiscard]] const std::byte* contiguous() const noexcept {
        const auto offset = position & (ring.capacity - 1);
        return offset + size <= ring.capacity ? ring.data() + offset : nullptr;
    }
};

/// Takes the whole message waiting at the head, for the thread resting on the receive lock, when it
/// has at most `max_size` bytes and `take(RecordView)` takes it (returns true; it may also throw,
/// and then the message stays). not_taken: nothing was taken, so take ring_receive (which waits,
/// reads what streams, refuses, reports end of file, or hands over what `take` declined).
template <class Take>
[[gnu::always_inline]] inline FastPath ring_receive_fast(const Ring& ring, std::uint64_t max_size, Take&& take) {
    // A view open: its thread must not take that message again (the general way says so).
    if (ring->viewer.load(std::memory_order_relaxed) != 0) return FastPath::not_taken;
    if (!enter_resting(ring->receive_lock, this_thread_id())) return FastPath::not_taken;
    struct Exit {
        RingLock& lock;
        ~Exit() { exit_ring_lock(lock); }
    } exit{ring->receive_lock};
    const auto head = ring->head.load(std::memory_order_relaxed);
    auto seen_tail = ring->receiver_seen_tail;
    if (seen_tail <= head) {  // look at the sender's line only when the last look is used up
        seen_tail = ring->tail.load(std::memory_order_acquire);
        ring->receiver_seen_tail = seen_tail;
        if (seen_tail <= head) return FastPath::not_taken;
    }
    RecordHeader header;
    std::memcpy(&header, ring.data() + (head & (ring.capacity - 1)), sizeof header);
    // Anything but a whole, plausible record is for the general way, which checks it closely.
    if (header.flags != (RecordHeader::first | RecordHeader::last) || header.total > max_size ||
        header.chunk != header.total || record_footprint(header.chunk) > seen_tail - head ||
        seen_tail - head > ring.capacity)
        return FastPath::not_taken;
    if (!take(RecordView{ring, head + sizeof header, header.total})) return FastPath::not_taken;
    const auto new_head = head + record_footprint(header.chunk);
    retire_records(ring, new_head, ring->received.load(std::memory_order_relaxed) + 1);
    evict_record(ring, head, new_head - head);
    light_fence();  // pairs with a sender's heavy fence before it sleeps for room
    bool signal = ring->pollers.load(std::memory_order_relaxed) != 0;
    if (ring->senders_sleeping.load(std::memory_order_relaxed) != 0 && room_for_senders(ring, seen_tail, new_head))
        signal = ring_wake_senders(ring) || signal;
    return signal ? FastPath::taken_signal : FastPath::taken;
}

/// A loan for the thread resting on the send lock, of room it already knows is free and that does
/// not reach the ring's end (so needs no padding). False: nothing was lent, take ring_lend.
[[gnu::always_inline]] inline bool ring_lend_fast(const Ring& ring, std::uint64_t size, RingLoan& loan) noexcept {
    if (size > ring_max_loan(ring) || ring->lender.load(std::memory_order_relaxed) != 0) return false;
    const auto me = this_thread_id();
    if (!enter_resting(ring->send_lock, me)) return false;
    const auto tail = ring->journal_tail.load(std::memory_order_relaxed);
    const auto sent = ring->sent.load(std::memory_order_relaxed);
    const auto footprint = record_footprint(size);
    const auto used = tail - ring->sender_seen_head;
    const auto offset = tail & (ring.capacity - 1);
    if (used > ring.capacity - footprint || offset + footprint > ring.capacity ||
        ring->corrupt.load(std::memory_order_relaxed) != 0 || ring->shut_down.load(std::memory_order_relaxed) != 0 ||
        (ring->max_messages != 0 && sent - std::min(sent, ring->sender_seen_received) >= ring->max_messages)) {
        exit_ring_lock(ring->send_lock);
        return false;
    }
    prefetch_ahead(ring, tail, footprint, ring.capacity - used);
    loan = {tail, size, ring.data() + offset + sizeof(RecordHeader), me};
    ring->lender.store(me, std::memory_order_relaxed);
    return true;
}

/// Publishes the first `size` bytes of a loan, under the send lock its thread holds, and wakes
/// receivers that sleep; says whether someone polls the ring.
inline bool commit_loan(const Ring& ring, const RingLoan& loan, std::uint64_t size) noexcept {
    const RecordHeader header{static_cast<std::uint32_t>(size), RecordHeader::first | RecordHeader::last, size};
    std::memcpy(ring.data() + (loan.position & (ring.capacity - 1)), &header, sizeof header);  // never wraps
    publish_records(ring, loan.position + record_footprint(size), ring->sent.load(std::memory_order_relaxed) + 1);
    ring->lender.store(0, std::memory_order_relaxed);
    light_fence();  // as in ring_send_fast
    if (ring->receivers_sleeping.load(std::memory_order_relaxed) != 0) ring_wake_receivers(ring);
    return ring->pollers.load(std::memory_order_relaxed) != 0;
}

/// Publishes a loan from the thread that took it (as ring_publish_loan). not_taken: another thread
/// publishes it, or the loan is not this ring's open one; take ring_publish_loan.
[[gnu::always_inline]] inline FastPath ring_publish_loan_fast(const Ring& ring, const RingLoan& loan,
                                                              std::uint64_t size) noexcept {
    const auto me = this_thread_id();
    if (loan.thread != me || ring->lender.load(std::memory_order_relaxed) != me || size > loan.size)
        return FastPath::not_taken;
    const bool signal = commit_loan(ring, loan, size);
    exit_ring_lock(ring->send_lock);
    return signal ? FastPath::taken_signal : FastPath::taken;
}

/// A view of the whole message at the head, for the thread resting on the receive lock, when it lies
/// in one piece and has at most `max_size` bytes. False: nothing was taken, take ring_receive_view.
[[gnu::always_inline]] inline bool ring_view_fast(const Ring& ring, std::uint64_t max_size, RingView& view) noexcept {
    if (ring->viewer.load(std::memory_order_relaxed) != 0) return false;
    const auto me = this_thread_id();
    if (!enter_resting(ring->receive_lock, me)) return false;
    const auto head = ring->head.load(std::memory_order_relaxed);
    auto seen_tail = ring->receiver_seen_tail;
    if (seen_tail <= head) {
        seen_tail = ring->tail.load(std::memory_order_acquire);
        ring->receiver_seen_tail = seen_tail;
    }
    RecordHeader header{};
    const auto offset = head & (ring.capacity - 1);
    if (seen_tail > head) std::memcpy(&header, ring.data() + offset, sizeof header);
    // Anything but a whole, plausible record in one piece is for the general way.
    if (seen_tail <= head || header.flags != (RecordHeader::first | RecordHeader::last) || header.total > max_size ||
        header.chunk != header.total || record_footprint(header.chunk) > seen_tail - head ||
        seen_tail - head > ring.capacity || offset + sizeof header + header.chunk > ring.capacity) {
        exit_ring_lock(ring->receive_lock);
        return false;
    }
    view = {head, header.total, ring.data() + offset + sizeof header, me};
    ring->viewer.store(me, std::memory_order_relaxed);
    return true;
}

/// Retires the message of a view, under the receive lock its thread holds; says whether it woke
/// senders that sleep for room.
inline bool retire_view(const Ring& ring, const RingView& view) noexcept {
    const auto new_head = view.position + record_footprint(view.size);
    retire_records(ring, new_head, ring->received.load(std::memory_order_relaxed) + 1);
    ring->viewer.store(0, std::memory_order_relaxed);
    if (held_resting(ring->receive_lock)) evict_record(ring, view.position, new_head - view.position);
    light_fence();  // pairs with a sender's heavy fence before it sleeps for room
    return ring->senders_sleeping.load(std::memory_order_relaxed) != 0 &&
           room_for_senders(ring, ring->receiver_seen_tail, new_head) && ring_wake_senders(ring);
}

/// Frees a view from the thread that took it (as ring_release_view). not_taken: another thread
/// releases it; take ring_release_view.
[[gnu::always_inline]] inline FastPath ring_release_view_fast(const Ring& ring, const RingView& view) noexcept {
    const auto me = this_thread_id();
    if (view.thread != me || ring->viewer.load(std::memory_order_relaxed) != me) return FastPath::not_taken;
    bool signal = retire_view(ring, view);
    signal = ring->pollers.load(std::memory_order_relaxed) != 0 || signal;
    exit_ring_lock(ring->receive_lock);
    return signal ? FastPath::taken_signal : FastPath::taken;
}

}  // namespace ipc::detail
