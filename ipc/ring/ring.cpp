// ring/ring.cpp — the general send and receive of the ring (THE PROTOCOL in ipc/detail/ring.hpp):
// waits, streams, aborts, take-overs from dead senders and receivers, and wake-ups.
#include "ipc/detail/ring.hpp"

#include <algorithm>
#include <cstring>
#include <optional>
#include <type_traits>

#include "ipc/error.hpp"
#include "shm/holders.hpp"
#include "shm/liveness.hpp"
#include "sync/lock_sleeper.hpp"
#include "sys/futex.hpp"
#include "sys/spin.hpp"

namespace ipc::detail {

namespace {

/// Wakes every sender and receiver that sleeps on the ring, whatever they wait for: after a mark
/// that they must all see (corrupt, shut down), set before this call.
void wake_everyone(const Ring& ring) noexcept {
    ring->data_signal.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(ring->data_signal);
    ring->space_signal.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(ring->space_signal);
}

/// Marks the ring corrupt, wakes everyone who sleeps on it (so they see the mark), and throws.
[[noreturn]] void fail_corrupt(const Ring& ring, const std::string& problem) {
    ring->corrupt.store(1, std::memory_order_release);
    wake_everyone(ring);
    throw CorruptSegmentError(ring.name() + ": " + problem +
                              " (another process wrote over the ring's shared memory; the ring is unusable now)");
}

bool is_shut_down(const Ring& ring) noexcept { return ring->shut_down.load(std::memory_order_acquire) != 0; }

void check_not_corrupt(const Ring& ring) {
    if (ring->corrupt.load(std::memory_order_acquire) != 0)
        throw CorruptSegmentError(ring.name() + ": the ring was found corrupt (another process wrote over its "
                                                "shared memory); it is unusable now");
}

/// Positions a side read from the other's line: at most a ring's worth apart, the later one ahead.
void check_in_use(const Ring& ring, std::uint64_t head, std::uint64_t tail) {
    if (tail - head > ring.capacity)
        fail_corrupt(ring, "positions head " + std::to_string(head) + " and tail " + std::to_string(tail) +
                               " are not within the ring's " + std::to_string(ring.capacity) + " bytes");
}

/// The header of the record at `position`, of which `published` bytes up to the tail are committed,
/// checked against everything the protocol promises about it before any field is used.
RecordHeader read_header(const Ring& ring, std::uint64_t position, std::uint64_t published) {
    RecordHeader header{};
    copy_out(ring, position, &header, sizeof header);
    constexpr auto known = RecordHeader::first | RecordHeader::last | RecordHeader::abort | RecordHeader::padding;
    const bool is_abort = header.flags & RecordHeader::abort;
    const char* problem = nullptr;
    if (header.flags & RecordHeader::padding) {
        // Fills the ring up to its end, less than half of it (a loan never needs more), whole lines.
        if (header.flags != RecordHeader::padding || header.chunk != 0) problem = "flags";
        else if (header.total < record_alignment || header.total % record_alignment != 0 ||
                 header.total > ring.capacity / 2 || ((position + header.total) & (ring.capacity - 1)) != 0)
            problem = "padding size (it must end at the ring's end)";
        else if (header.total > published)
            problem = "length (it runs past the tail)";
    } else if ((header.flags & ~known) != 0 || (is_abort && (header.flags != RecordHeader::abort || header.chunk != 0)))
        problem = "flags";
    else if (header.chunk > ring_max_unstreamed(ring) || header.chunk > header.total)
        problem = "chunk size";
    else if ((header.flags & RecordHeader::first) && (header.flags & RecordHeader::last) && header.chunk != header.total)
        problem = "size of a message in one piece";
    else if (!is_abort && !(header.flags & RecordHeader::last) &&
             (header.chunk != ring_max_unstreamed(ring) || header.total <= header.chunk))
        problem = "size of a streamed message's chunk (all but the last are full)";
    else if (!is_abort && !(header.flags & RecordHeader::first) && header.chunk == 0)
        problem = "size of a streamed message's chunk (empty)";
    else if (record_footprint(header.chunk) > published)
        problem = "length (it runs past the tail)";
    if (problem)
        fail_corrupt(ring, std::string("the record at ") + std::to_string(position) + " has an impossible " + problem +
                               " (chunk " + std::to_string(header.chunk) + ", flags " + std::to_string(header.flags) +
                               ", total " + std::to_string(header.total) + ")");
    return header;
}

/// Wakes whoever sleeps on `signal`, at most once per sleep: a sleeper raises `sleeping` before its
/// last look at the ring, and the first waker to lower it pays for the system call. True when it
/// woke someone (who may also wait outside the ring, on a readiness descriptor).
bool wake(std::atomic<std::uint32_t>& signal, std::atomic<std::uint32_t>& sleeping) noexcept {
    // The fence orders the caller's publish before its look at `sleeping`; with the sleeper's heavy
    // fence between raising the flag and its own last look, one of the two always sees the other
    // (a first sleep has no heavy fence, and ends by itself: see unfenced_sleep).
    light_fence();
    if (sleeping.load(std::memory_order_relaxed) != 0 && sleeping.exchange(0, std::memory_order_acq_rel) != 0) {
        signal.fetch_add(1, std::memory_order_release);
        futex_wake(signal);
        return true;
    }
    return false;
}

// A waiter that keeps finding the peer's next step while it spins is keeping pace with a peer
// that streams: each look takes the peer's line away right after the peer wrote it, one cache-line
// round trip per message for both, and a peer slowed down so is all the easier to keep pace with
// (every wait that ends while spinning counts: a slowed peer takes several looks). Such a waiter
// lets a batch gather instead: it looks only every half microsecond or so, until a batch's bytes
// (or room) are there, a look finds no more than the one before, or a few microseconds passed;
// meanwhile the peer writes lines nobody reads. A request and its reply also look like streaming,
// but there the wait finds one message and only delays it by a look; then the waiter needs twice
// as many finds in a row before it gathers again, so round trips pay for a gather at most once in
// a thousand. (benchmarks/README.md, "What the code's choices rest on", has the measurements.)
constexpr int gather_look_pauses = 16;  // ≈ 0.5 µs between looks where a pause takes 30 ns
constexpr auto gather_time = std::chrono::microseconds(4);
constexpr std::uint64_t largest_batch = 16 << 10;  // bytes; a quarter of a small ring
constexpr std::uint16_t fewest_spin_finds = 4, most_spin_finds = 1024;

/// What a receive reserves for a streamed message before its bytes come.
constexpr std::uint64_t largest_reserve = std::uint64_t{64} << 20;

std::uint64_t batch_for(const Ring& ring) noexcept { return std::min(largest_batch, ring.capacity / 4); }

void gather_failed(WaitPace& pace) noexcept {
    pace.spin_finds = 0;
    pace.needed = static_cast<std::uint16_t>(std::min<int>(std::max<int>(pace.needed, fewest_spin_finds) * 2, most_spin_finds));
}

/// What a paced wait needs of its side: `look()` looks at the peer's line afresh and says whether
/// the wait is over; `backlog()` is what the last look found, in bytes (messages waiting, or room);
/// `gathered()` says whether that is more than one record's worth.
template <class Look, class Backlog, class Gathered>
struct Pacing {
    WaitPace& pace;
    Look look;
    Backlog backlog;
    Gathered gathered;
    std::uint64_t batch;
};
template <class Look, class Backlog, class Gathered>
Pacing(WaitPace&, Look, Backlog, Gathered, std::uint64_t) -> Pacing<Look, Backlog, Gathered>;

/// Waits for a batch as the comment above says, or until a look finds no more than the one before
/// (the peer stopped, or waits for an answer): then what is there is taken at once. True when the
/// wait is over.
template <class Pace>
bool gather(Pace& pacing) {
    const auto until = std::chrono::steady_clock::now() + gather_time;
    bool found = false;
    std::uint64_t seen = 0;
    do {
        for (int i = 0; i < gather_look_pauses; ++i) cpu_relax();
        found = pacing.look();
        if (found) {
            const auto backlog = pacing.backlog();
            if (backlog >= pacing.batch || backlog == seen) break;
            seen = backlog;
        }
    } while (std::chrono::steady_clock::now() < until);
    if (found && pacing.gathered())
        pacing.pace.needed = std::max<std::uint16_t>(pacing.pace.needed / 2, fewest_spin_finds);
    else
        gather_failed(pacing.pace);
    return found;
}

/// How long a wait's first sleep may last without the heavy fence. The fence interrupts every CPU
/// that runs a process of ipc's, which under load costs more than the sleep it guards; without it,
/// a peer that publishes at the very moment the flag goes up may miss the flag (its store still in
/// its store buffer), and the sleep ends by itself at this bound. Shorter bounds wake waiters that
/// a busy scheduler keeps waiting for a time slice, and those wake-ups slowed the others
/// (benchmarks/README.md, "What the code's choices rest on").
constexpr auto unfenced_sleep = std::chrono::milliseconds(2);

/// No pacing: a wait that may not delay what it waits for (a lock, the rest of a streamed message).
struct NoPacing {};

/// Sleeps on `signal` until `ready()` or the deadline, asking `peer_gone()` on the liveness schedule
/// (LookBackoff). `pacing` carries the waiter's finds from one wait to the next and lets batches
/// gather (see above).
template <class Ready, class Gone, class Pace = NoPacing>
RingResult wait_for(std::atomic<std::uint32_t>& signal, std::atomic<std::uint32_t>& sleeping, const Deadline& deadline,
                    Ready ready, Gone peer_gone, Pace pacing = {}) {
    constexpr bool paced = !std::is_same_v<Pace, NoPacing>;
    if constexpr (paced) {
        // Not for a short timeout (a get_nowait): it would wait for the batch past its deadline.
        if (pacing.pace.spin_finds >= std::max(pacing.pace.needed, fewest_spin_finds) &&
            (deadline.is_never() || deadline.at() - std::chrono::steady_clock::now() > gather_time) && gather(pacing))
            return RingResult::done;
    }
    std::chrono::nanoseconds spin = spin_budget;
    if (!deadline.is_never())  // a short timeout (a get_nowait) is not held up by a long spin
        spin = std::clamp<std::chrono::nanoseconds>(deadline.at() - std::chrono::steady_clock::now(), {}, spin);
    const bool found = spin_until(&signal, ready, spin);
    if constexpr (paced)
        pacing.pace.spin_finds = found ? static_cast<std::uint16_t>(std::min<int>(pacing.pace.spin_finds + 1, most_spin_finds)) : 0;
    if (found) return RingResult::done;
    LookBackoff looks;
    bool fenced = false;
    for (;;) {
        const auto seen = signal.load(std::memory_order_acquire);
        sleeping.store(1, std::memory_order_seq_cst);
        // The first sleep skips the heavy fence (see unfenced_sleep); one that outlasts it is fenced.
        if (fenced) heavy_fence();
        if (ready()) return RingResult::done;  // a stale flag costs one spare wake-up, no more
        const bool woken = futex_wait(signal, seen, deadline.or_sooner(fenced ? looks.peek() : unfenced_sleep));
        if (ready()) return RingResult::done;
        if (!woken) {
            if (deadline.expired()) return RingResult::timed_out;
            if (!fenced) {
                fenced = true;
                continue;
            }
            if (peer_gone()) return ready() ? RingResult::done : RingResult::peer_gone;
            looks.next();
        }
    }
}

/// Bytes [offset, offset + size) of a message, the payload of one record.
struct Chunk {
    const MessageParts* message = nullptr;
    std::uint64_t offset = 0;
    std::uint64_t size = 0;

    /// Copies the chunk into the ring at `position`, part by part.
    void copy_to(const Ring& ring, std::uint64_t position) const noexcept {
        auto skip = offset;
        auto left = size;
        for (std::size_t i = 0; left != 0 && message && i < message->size(); ++i) {
            const auto& part = (*message)[i];
            if (skip >= part.size()) {
                skip -= part.size();
                continue;
            }
            const auto bytes = std::min<std::uint64_t>(part.size() - skip, left);
            copy_in(ring, position, part.data() + skip, bytes);
            position += bytes;
            left -= bytes;
            skip = 0;
        }
    }
};

class Sender {
public:
    Sender(const Ring& ring, const Holders* receivers, RingWait wait) : ring_(ring), receivers_(receivers), wait_(wait) {}

    /// Writes one record once `reserve` bytes beyond it are free too.
    RingResult write(std::uint32_t flags, const Chunk& chunk, std::uint64_t total, std::uint64_t reserve,
                     const Deadline& deadline) {
        // Once the ring is shut down no record but an abort goes in: a stream under way ends.
        const bool stoppable = !(flags & RecordHeader::abort);
        if (auto result = wait_for_room(record_footprint(chunk.size) + reserve, flags & RecordHeader::first, stoppable,
                                        deadline);
            result != RingResult::done)
            return result;
        const auto tail = ring_->journal_tail.load(std::memory_order_relaxed);
        const auto sent = ring_->sent.load(std::memory_order_relaxed);
        prefetch_ahead(ring_, tail, record_footprint(chunk.size), room(tail));
        const RecordHeader header{static_cast<std::uint32_t>(chunk.size), flags, total};
        copy_in(ring_, tail, &header, sizeof header);
        chunk.copy_to(ring_, tail + sizeof header);
        publish_records(ring_, tail + record_footprint(chunk.size), sent + ((flags & RecordHeader::last) ? 1 : 0));
        wake(ring_->data_signal, ring_->receivers_sleeping);
        return RingResult::done;
    }

    /// Waits until `need` bytes are free at the tail (and, for a message's first record, a place
    /// under a Queue's maxsize). A `stoppable` wait ends when the ring is shut down.
    RingResult wait_for_room(std::uint64_t need, bool first, bool stoppable, const Deadline& deadline) {
        if (stoppable && is_shut_down(ring_)) return RingResult::shut_down;
        const auto tail = ring_->journal_tail.load(std::memory_order_relaxed);  // equals tail between calls
        // A new message also needs a free place under a Queue's maxsize.
        const bool counts = first && ring_->max_messages != 0;
        const auto sent = ring_->sent.load(std::memory_order_relaxed);
        // Judge by what we saw of the receiver last time; look again only when that is not enough.
        auto room = [&] { return this->room(tail); };
        auto fits = [&] {
            return room() >= need &&
                   (!counts || (sent > ring_->sender_seen_received ? sent - ring_->sender_seen_received : 0) <
                                   ring_->max_messages);
        };
        auto has_room = [&] {
            ring_->sender_seen_head = ring_->head.load(std::memory_order_acquire);
            ring_->sender_seen_received = ring_->received.load(std::memory_order_acquire);
            check_not_corrupt(ring_);
            check_in_use(ring_, ring_->sender_seen_head, tail);
            return fits();
        };
        if (!fits() && !has_room()) {
            auto gone = [&] { return receivers_ && !receivers_->any_alive(); };
            auto stopped = [&] { return stoppable && is_shut_down(ring_); };
            if (wait_ == RingWait::immediate) {
                // Say "I wait" as a sleeper would, then look once more: the receiver that frees room
                // after this sees the flag and reports it (the caller waits on a descriptor instead).
                ring_->senders_sleeping.store(1, std::memory_order_seq_cst);
                heavy_fence();
                if (!has_room()) return gone() ? RingResult::peer_gone : RingResult::timed_out;
            } else if (auto result = wait_for(ring_->space_signal, ring_->senders_sleeping, deadline,
                                              [&] { return stopped() || has_room(); }, gone,
                                              Pacing{ring_->sender_pace, has_room, room, [&] { return room() >= 4 * need; },
                                                     batch_for(ring_)});
                       result != RingResult::done) {
                return result;
            }
            if (stopped()) return RingResult::shut_down;
        }
        return RingResult::done;
    }

private:
    /// Free bytes at `tail` by the last look at the receivers' line; none when that look says more
    /// than the ring is in use (a closer look, in wait_for_room, judges it).
    [[nodiscard]] std::uint64_t room(std::uint64_t tail) const noexcept {
        const auto used = tail - ring_->sender_seen_head;
        return used > ring_.capacity ? 0 : ring_.capacity - used;
    }

    const Ring& ring_;
    const Holders* receivers_;
    RingWait wait_;
};

struct LockGuard {
    RingLock& lock;
    ~LockGuard() { exit_ring_lock(lock); }
};

/// Waiting for the lock is not waiting for room or data: even put_nowait()/get_nowait() wait a
/// little for a sender or receiver that is in the middle of a (streamed) message.
Deadline lock_deadline(const Deadline& deadline) {
    constexpr auto at_least = std::chrono::milliseconds(100);
    if (deadline.is_never()) return deadline;
    return deadline.at() - std::chrono::steady_clock::now() < at_least ? Deadline::after(at_least) : deadline;
}

/// Takes the ring's send or receive lock. An immediate call takes it only when it is free, or when
/// its holder died (the takeover waits the few ms a liveness check needs): a live holder is busy
/// with its own message and signals the descriptor when it is done.
Acquired take_ring_lock(RingLock& lock, const Deadline& deadline, RingWait wait) {
    if (enter_resting(lock, this_thread_id())) return Acquired::yes;
    if (wait == RingWait::block) return enter_ring_lock(lock, true, lock_deadline(deadline));
    if (const auto acquired = enter_ring_lock(lock, false, deadline); acquired != Acquired::timed_out) return acquired;
    const auto owner = ring_lock_owner(lock);
    if (owner != 0 && !holder_alive(lock.word, owner)) return enter_ring_lock(lock, true, lock_deadline(Deadline::after({})));
    return enter_ring_lock(lock, false, deadline);
}

/// A holder killed between publishing a position and its message counter left the counter one
/// short; the journal says what it was about to write. One killed before it published left a
/// journal ahead of the ring: its record was never delivered, and the next sender overwrites it.
void finish_dead_sender(const Ring& ring) noexcept {
    const auto tail = ring->tail.load(std::memory_order_relaxed);
    if (tail != ring->journal_tail.load(std::memory_order_relaxed)) {
        ring->journal_tail.store(tail, std::memory_order_relaxed);
        ring->journal_sent.store(ring->sent.load(std::memory_order_relaxed), std::memory_order_relaxed);
    } else if (ring->sent.load(std::memory_order_relaxed) < ring->journal_sent.load(std::memory_order_relaxed)) {
        ring->sent.store(ring->journal_sent.load(std::memory_order_relaxed), std::memory_order_release);
    }
}

/// Likewise for receivers. One that died holding a view had the message at the head delivered:
/// it is retired here, so that nobody receives it twice.
void finish_dead_receiver(const Ring& ring) {
    if (ring->head.load(std::memory_order_relaxed) == ring->journal_head.load(std::memory_order_relaxed) &&
        ring->received.load(std::memory_order_relaxed) < ring->journal_received.load(std::memory_order_relaxed))
        ring->received.store(ring->journal_received.load(std::memory_order_relaxed), std::memory_order_release);
    if (ring->viewer.load(std::memory_order_relaxed) == 0) return;
    const auto head = ring->head.load(std::memory_order_relaxed);
    const auto tail = ring->tail.load(std::memory_order_acquire);
    check_in_use(ring, head, tail);
    if (tail != head) {
        const auto header = read_header(ring, head, tail - head);
        retire_records(ring, head + record_span(header),
                       ring->received.load(std::memory_order_relaxed) + ((header.flags & RecordHeader::last) ? 1 : 0));
    }
    ring->viewer.store(0, std::memory_order_relaxed);
}

/// Ends the hold of a ring lock that `thread` took for a loan or a view, from whichever thread
/// sends or drops it.
void end_hold(RingLock& lock, std::uint32_t thread) noexcept {
    if (thread == this_thread_id())
        exit_ring_lock(lock);
    else
        abandon_ring_lock(lock, thread);
}

[[noreturn]] void throw_loan_open(const Ring& ring) {
    throw ValueError(ring.name() + ": this thread has a loan open on it; send the loan or drop it first");
}
[[noreturn]] void throw_view_open(const Ring& ring) {
    throw ValueError(ring.name() + ": this thread holds a view of a message from it; drop the view first");
}

/// No sender is streaming a message any more (one that stopped published its last chunk before
/// saying so), or the one that was died: the rest of a message begun in the ring is not coming.
bool stream_ended(const Ring& ring) {
    if (ring->streaming.load(std::memory_order_acquire) == 0) return true;
    // A sender holds the send lock from a stream's first chunk to its last: a free lock means
    // nobody streams (a flag that says otherwise was written over).
    const auto owner = ring_lock_owner(ring->send_lock);
    return owner == 0 || !holder_alive(ring->send_lock.word, owner);
}

/// The receive side of a ring, for the receive lock's holder.
class Consumer {
public:
    explicit Consumer(const Ring& ring) : ring_(ring), head_(ring->head.load(std::memory_order_relaxed)) {}

    /// The tail seen last time still counts; look at the sender's line only when it is used up (or
    /// is not a position in the ring).
    bool available() {
        const auto seen = ring_->receiver_seen_tail;
        return (seen > head_ && seen - head_ <= ring_.capacity) || look();
    }
    /// Looks at the sender's line afresh.
    bool look() {
        const auto tail = ring_->tail.load(std::memory_order_acquire);
        check_in_use(ring_, head_, tail);
        ring_->receiver_seen_tail = tail;
        return tail > head_;
    }
    /// The header of the record at the head (once available()), checked.
    [[nodiscard]] RecordHeader header() const { return read_header(ring_, head_, ring_->receiver_seen_tail - head_); }
    /// The bytes of messages seen waiting at the last look.
    [[nodiscard]] std::uint64_t backlog() const noexcept { return ring_->receiver_seen_tail - head_; }
    [[nodiscard]] std::uint64_t head() const noexcept { return head_; }
    /// More than the record at the head is there (once available()).
    bool gathered() const noexcept {
        RecordHeader header{};
        copy_out(ring_, head_, &header, sizeof header);
        return ring_->receiver_seen_tail - head_ > record_span(header);
    }

    void consume(const RecordHeader& header) {
        const auto new_head = head_ + record_span(header);
        retire_records(ring_, new_head,
                       ring_->received.load(std::memory_order_relaxed) + ((header.flags & RecordHeader::last) ? 1 : 0));
        // Only a resting holder evicts: a shared lock's release is a locked instruction, which
        // waits for the flushes to finish (twice the cost of a fan-out's receive).
        if (held_resting(ring_->receive_lock)) evict_record(ring_, head_, new_head - head_);
        head_ = new_head;
        if (room_for_senders(ring_, ring_->receiver_seen_tail, head_))
            woke_senders_ = wake(ring_->space_signal, ring_->senders_sleeping) || woke_senders_;
    }
    [[nodiscard]] bool woke_senders() const noexcept { return woke_senders_; }

    /// Drops what abandoned messages left at the head (chunks after a dead receiver, abort records).
    void skip_leftovers() {
        while (available()) {
            const auto record = header();
            if (record.flags & RecordHeader::first) return;
            consume(record);
        }
    }

    /// How much of the message at the head (a `first` record, once available()) the last look saw:
    /// all of it (its last record), its end by an abort or a new message, or a part so far.
    enum class Extent { whole, cut, open };
    [[nodiscard]] Extent extent() const {
        const auto tail = ring_->receiver_seen_tail;
        for (auto position = head_; position < tail;) {
            const auto record = read_header(ring_, position, tail - position);
            if (position != head_ && (record.flags & (RecordHeader::first | RecordHeader::abort))) return Extent::cut;
            if (record.flags & RecordHeader::last) return Extent::whole;
            position += record_span(record);
        }
        return Extent::open;
    }

    /// Drops the message at the head, which its sender abandoned (what follows of it later goes as
    /// leftovers).
    void drop_message() {
        consume(header());
        skip_leftovers();
    }

private:
    const Ring& ring_;
    std::uint64_t head_;
    bool woke_senders_ = false;
};

/// What a sender that took the send lock over from a dead one does first: completes its journal,
/// forgets its loan, and closes the message it was streaming with an abort record (its last chunk
/// left room for it; if not in time, the next sender retries).
RingResult take_over_from_dead_sender(const Ring& ring, Sender& sender, const Deadline& deadline) {
    finish_dead_sender(ring);
    ring->lender.store(0, std::memory_order_relaxed);
    if (ring->streaming.load(std::memory_order_relaxed)) {
        if (auto result = sender.write(RecordHeader::abort, {}, 0, 0, deadline); result != RingResult::done) return result;
        ring->streaming.store(0, std::memory_order_relaxed);
    }
    return RingResult::done;
}

}  // namespace

void ring_wake_receivers(const Ring& ring) noexcept { wake(ring->data_signal, ring->receivers_sleeping); }
bool ring_wake_senders(const Ring& ring) noexcept { return wake(ring->space_signal, ring->senders_sleeping); }

Ring Ring::open(std::span<std::byte> area, std::string name) {
    auto problem = [&](const std::string& what) {
        return CorruptSegmentError(name + ": " + what + " (corrupt, or not made by ipc)");
    };
    if (area.size() < sizeof(RingState) + 4096)
        throw problem("its ring area has " + std::to_string(area.size()) + " bytes, too few for a ring");
    const std::uint64_t capacity = area.size() - sizeof(RingState);
    if ((capacity & (capacity - 1)) != 0 || capacity > (std::uint64_t{1} << 32))
        throw problem("its ring area holds " + std::to_string(capacity) + " data bytes, not a power of two up to 4 GiB");
    auto& state = *reinterpret_cast<RingState*>(area.data());
    if (state.capacity != capacity)
        throw problem("its ring says it has " + std::to_string(state.capacity) + " bytes, but its area holds " +
                      std::to_string(capacity));
    return Ring(state, std::move(name));
}

std::uint64_t RingState::capacity_for(std::size_t requested, const char* what) {
    if (requested > (std::size_t{1} << 32))
        throw ValueError(std::string(what) + " capacity " + std::to_string(requested) + " is above 4 GiB");
    std::uint64_t capacity = 4096;
    while (capacity < requested) capacity <<= 1;
    return capacity;
}

RingResult ring_send(const Ring& ring, const MessageParts& message, const Deadline& deadline, const Holders* receivers,
                     RingWait wait) {
    if (ring->lender.load(std::memory_order_relaxed) == this_thread_id()) throw_loan_open(ring);
    const auto acquired = take_ring_lock(ring->send_lock, deadline, wait);
    if (acquired == Acquired::timed_out) {
        // Busy with another sender: whoever waits outside the ring hears of room as if it were full.
        if (wait == RingWait::immediate) ring->senders_sleeping.store(1, std::memory_order_seq_cst);
        return RingResult::timed_out;
    }
    LockGuard guard{ring->send_lock};
    check_not_corrupt(ring);
    Sender sender(ring, receivers, wait);
    if (acquired == Acquired::owner_died)
        if (auto result = take_over_from_dead_sender(ring, sender, deadline); result != RingResult::done) return result;
    const std::uint64_t max_chunk = ring_max_unstreamed(ring);
    const auto total = message_size(message);
    if (total <= max_chunk)
        return sender.write(RecordHeader::first | RecordHeader::last, Chunk{&message, 0, total}, total, 0, deadline);

    // Stream: every chunk but the last keeps room for an abort record, so a sender that gives up
    // (timeout, dead reader) or dies can always close the message it began. `streaming` is set
    // before the first chunk goes out, so a receiver that has one knows the rest is still coming
    // (an abort record that follows no chunk is skipped like any other leftover).
    ring->streaming.store(1, std::memory_order_relaxed);
    std::uint64_t sent = 0;
    while (sent < total) {
        const auto size = std::min<std::uint64_t>(max_chunk, total - sent);
        std::uint32_t flags = (sent == 0 ? RecordHeader::first : 0) | (sent + size == total ? RecordHeader::last : 0);
        const auto result = sender.write(flags, Chunk{&message, sent, size}, total,
                                         (flags & RecordHeader::last) ? 0 : record_footprint(0), deadline);
        if (result != RingResult::done) {
            if (sent > 0) sender.write(RecordHeader::abort, {}, 0, 0, Deadline::never());  // room was kept
            ring->streaming.store(0, std::memory_order_release);
            return result;
        }
        sent += size;
    }
    // After the last chunk's commit: a receiver that sees 0 here sees that chunk too.
    ring->streaming.store(0, std::memory_order_release);
    return RingResult::done;
}

namespace {

/// ring_receive, and ring_receive_view when `view` is given.
Received receive(const Ring& ring, std::vector<std::byte>& out, RingView* view, const Deadline& deadline,
                 const Holders* senders, std::uint64_t max_size, RingWait wait) {
    auto& unfinished = ring.unfinished();
    const auto me = this_thread_id();
    if (ring->viewer.load(std::memory_order_relaxed) == me) throw_view_open(ring);
    // A message this thread began and left unfinished: it still holds the lock (inside a call).
    const bool resuming = unfinished.thread.load(std::memory_order_relaxed) == me;
    const auto acquired = resuming ? Acquired::yes : take_ring_lock(ring->receive_lock, deadline, wait);
    if (acquired == Acquired::timed_out) return {RingResult::timed_out};
    // A receiver that died here consumed at most part of one message; its remains are skipped below.
    struct Guard {
        RingLock& lock;
        bool keep = false;  // the call leaves a message unfinished: hold on to the lock
        ~Guard() {
            if (!keep) exit_ring_lock(lock);
        }
    } guard{ring->receive_lock};
    if (resuming) unfinished.thread.store(0, std::memory_order_relaxed);
    check_not_corrupt(ring);
    if (acquired == Acquired::owner_died) finish_dead_receiver(ring);

    Consumer consumer(ring);
    auto available = [&] { return consumer.available(); };
    auto senders_gone = [&] { return senders && !senders->any_alive(); };
    auto consume = [&](const RecordHeader& header) { consumer.consume(header); };
    auto finish = [&](Received received) {
        received.woke_senders = consumer.woke_senders();
        return received;
    };
    auto stream_broken = [&] { return stream_ended(ring); };
    // Reads the rest of a streamed message of `total` bytes, of which `out` holds the first.
    enum class Rest { complete, dropped, unfinished };
    auto read_rest = [&](std::uint64_t total) {
        // Only a caller that blocks with a deadline gives up on the rest, and keeps what it has: an
        // immediate one waits, since its sender may be waiting for the room this receive makes.
        const auto& until = wait == RingWait::block ? deadline : Deadline::never();
        for (;;) {
            if (!available()) {
                const auto result =
                    wait_for(ring->data_signal, ring->receivers_sleeping, until, available, stream_broken);
                if (result == RingResult::timed_out) return Rest::unfinished;
                if (result != RingResult::done) return Rest::dropped;  // its sender is gone
            }
            check_not_corrupt(ring);
            const auto header = consumer.header();
            if (header.flags & RecordHeader::first) return Rest::dropped;  // a new message: ours was abandoned
            if (header.flags & RecordHeader::abort) {
                consume(header);
                return Rest::dropped;
            }
            const std::uint64_t received = out.size();
            if (header.total != total || header.chunk > total - received)
                fail_corrupt(ring, "a chunk of a " + std::to_string(total) + "-byte message, after " +
                                       std::to_string(received) + " bytes, claims " + std::to_string(header.chunk) +
                                       " more of a " + std::to_string(header.total) + "-byte one");
            out.resize(received + header.chunk);
            copy_out(ring, consumer.head() + sizeof header, out.data() + received, header.chunk);
            consume(header);
            if (!(header.flags & RecordHeader::last)) continue;
            if (out.size() != total)
                fail_corrupt(ring, "a " + std::to_string(total) + "-byte message ended after " +
                                       std::to_string(out.size()) + " bytes");
            return Rest::complete;
        }
    };
    // Says whether the rest came; keeps the part and the lock when the deadline passed first.
    auto finish_stream = [&](std::uint64_t total) -> std::optional<Received> {
        switch (read_rest(total)) {
            case Rest::complete: return finish({RingResult::done, false, total});
            case Rest::unfinished:
                unfinished.total = total;
                std::swap(unfinished.bytes, out);
                unfinished.thread.store(me, std::memory_order_relaxed);
                keep_ring_lock(ring->receive_lock);
                guard.keep = true;
                return finish({RingResult::timed_out});
            case Rest::dropped: return std::nullopt;
        }
        return std::nullopt;
    };

    if (resuming) {
        std::swap(out, unfinished.bytes);
        if (auto received = finish_stream(unfinished.total)) return *received;
    }
    // Shut down and empty: looked at in that order, so a message sent before the shutdown is taken.
    auto drained = [&] { return is_shut_down(ring) && !available(); };
    for (;;) {
        if (!available()) {
            if (wait == RingWait::immediate) {
                if (drained()) return finish({RingResult::shut_down});
                if (!senders_gone()) return finish({RingResult::timed_out});
                if (!available()) return finish({RingResult::peer_gone});
            } else if (auto result = wait_for(ring->data_signal, ring->receivers_sleeping, deadline,
                                              [&] { return available() || is_shut_down(ring); }, senders_gone,
                                              Pacing{ring->receiver_pace, [&] { return consumer.look(); },
                                                     [&] { return consumer.backlog(); },
                                                     [&] { return consumer.gathered(); }, batch_for(ring)});
                       result != RingResult::done) {
                return finish({result});
            }
            if (drained()) return finish({RingResult::shut_down});
        }
        const auto header = consumer.header();
        if (!(header.flags & RecordHeader::first)) {  // the rest of an abandoned message, or an abort
            consume(header);
            continue;
        }
        if (header.total > max_size) return finish({RingResult::done, true, header.total});
        if (view && (header.flags & RecordHeader::last)) {
            const auto offset = (consumer.head() + sizeof header) & (ring.capacity - 1);
            if (offset + header.chunk <= ring.capacity) {  // in one piece: left in place, under the lock
                *view = {consumer.head(), header.total, ring.data() + offset, me};
                ring->viewer.store(me, std::memory_order_relaxed);
                guard.keep = true;
                return finish({RingResult::done, false, header.total});
            }
        }
        // Grown chunk by chunk: a total claimed by a damaged record costs no memory it did not bring.
        out.clear();
        out.reserve(std::min<std::uint64_t>(header.total, largest_reserve));
        out.resize(header.chunk);
        copy_out(ring, consumer.head() + sizeof header, out.data(), header.chunk);
        consume(header);
        if (header.flags & RecordHeader::last) return finish({RingResult::done, false, header.total});
        if (auto received = finish_stream(header.total)) return *received;
    }
}

}  // namespace

Received ring_receive(const Ring& ring, std::vector<std::byte>& out, const Deadline& deadline, const Holders* senders,
                      std::uint64_t max_size, RingWait wait) {
    return receive(ring, out, nullptr, deadline, senders, max_size, wait);
}

Received ring_receive_view(const Ring& ring, std::vector<std::byte>& out, RingView& view, const Deadline& deadline,
                           const Holders* senders, std::uint64_t max_size) {
    view = {};
    return receive(ring, out, &view, deadline, senders, max_size, RingWait::block);
}

bool ring_release_view(const Ring& ring, const RingView& view) noexcept {
    // A receiver that took the lock over (this view's thread ended) retired the message already.
    if (ring->viewer.load(std::memory_order_relaxed) != view.thread || ring_lock_owner(ring->receive_lock) != view.thread)
        return false;
    const bool woke = retire_view(ring, view);
    end_hold(ring->receive_lock, view.thread);
    return woke;
}

RingResult ring_lend(const Ring& ring, std::uint64_t size, const Deadline& deadline, const Holders* receivers,
                     RingLoan& loan) {
    const auto me = this_thread_id();
    if (ring->lender.load(std::memory_order_relaxed) == me) throw_loan_open(ring);
    if (size > ring_max_loan(ring))
        throw ValueError(ring.name() + ": a loan of " + std::to_string(size) + " bytes is larger than the " +
                         std::to_string(ring_max_loan(ring)) + " a message in one piece may have (make the capacity at "
                                                                "least twice the loan)");
    const auto acquired = take_ring_lock(ring->send_lock, deadline, RingWait::block);
    if (acquired == Acquired::timed_out) return RingResult::timed_out;
    struct Guard {
        RingLock& lock;
        bool keep = false;  // the loan is open: the lock stays with this thread
        ~Guard() {
            if (!keep) exit_ring_lock(lock);
        }
    } guard{ring->send_lock};
    check_not_corrupt(ring);
    Sender sender(ring, receivers, RingWait::block);
    if (acquired == Acquired::owner_died)
        if (auto result = take_over_from_dead_sender(ring, sender, deadline); result != RingResult::done) return result;
    // The record must not wrap: when it would, a padding record fills the ring to its end first.
    const auto tail = ring->journal_tail.load(std::memory_order_relaxed);
    const auto offset = tail & (ring.capacity - 1);
    const auto footprint = record_footprint(size);
    const auto padding = offset + footprint > ring.capacity ? ring.capacity - offset : 0;
    if (auto result = sender.wait_for_room(padding + footprint, true, true, deadline); result != RingResult::done)
        return result;
    if (padding != 0) {
        const RecordHeader header{0, RecordHeader::padding, padding};
        copy_in(ring, tail, &header, sizeof header);
    }
    const auto position = tail + padding;
    const auto used = position - ring->sender_seen_head;  // as wait_for_room last saw it
    prefetch_ahead(ring, position, footprint, used > ring.capacity ? 0 : ring.capacity - used);
    loan = {position, size, ring.data() + (position & (ring.capacity - 1)) + sizeof(RecordHeader), me};
    ring->lender.store(me, std::memory_order_relaxed);
    guard.keep = true;
    return RingResult::done;
}

bool ring_publish_loan(const Ring& ring, const RingLoan& loan, std::uint64_t size) {
    if (ring->lender.load(std::memory_order_relaxed) != loan.thread || ring_lock_owner(ring->send_lock) != loan.thread)
        throw Error(ring.name() + ": the thread that took this loan ended, and another sender took the ring over; "
                                  "the loan was not sent");
    const bool signal = commit_loan(ring, loan, std::min(size, loan.size));
    end_hold(ring->send_lock, loan.thread);
    return signal;
}

void ring_cancel_loan(const Ring& ring, const RingLoan& loan) noexcept {
    ring->lender.store(0, std::memory_order_relaxed);
    end_hold(ring->send_lock, loan.thread);
}

bool ring_shut_down(const Ring& ring) noexcept {
    if (ring->shut_down.exchange(1, std::memory_order_seq_cst) != 0) return false;
    wake_everyone(ring);
    return true;
}

std::optional<std::uint64_t> ring_drop_waiting(const Ring& ring, const Deadline& deadline) {
    const auto acquired = take_ring_lock(ring->receive_lock, deadline, RingWait::block);
    if (acquired == Acquired::timed_out) return std::nullopt;
    LockGuard guard{ring->receive_lock};
    check_not_corrupt(ring);
    if (acquired == Acquired::owner_died) finish_dead_receiver(ring);
    Consumer consumer(ring);
    std::uint64_t dropped = 0;
    for (;;) {
        consumer.skip_leftovers();
        if (!consumer.look()) return dropped;
        const auto extent = consumer.extent();
        if (extent == Consumer::Extent::open) return dropped;
        if (extent == Consumer::Extent::whole) ++dropped;
        consumer.drop_message();
    }
}

void ring_let_go(const Ring& ring) noexcept {
    auto& unfinished = ring.unfinished();
    if (const auto owner = unfinished.thread.exchange(0, std::memory_order_relaxed); owner != 0) {
        abandon_ring_lock(ring->receive_lock, owner);
        unfinished.bytes = {};
    }
    let_go_ring_lock(ring->send_lock);
    let_go_ring_lock(ring->receive_lock);
}

bool ring_poll(const Ring& ring, const Deadline& deadline, const Holders* senders) {
    // Ready means a receive would return at once: a whole message is at the head. What abandoned
    // messages left there is dropped first (when no receiver is busy). A message larger than the
    // ring is never whole in it: one begun counts as ready once its sender waits for the room
    // only a receive makes (or may be frozen there: a receive then waits for it to go on).
    auto has_message = [&] {
        // The rest of this thread's unfinished message must not pass for leftovers: a receive
        // goes on with it.
        if (ring.unfinished().thread.load(std::memory_order_relaxed) == this_thread_id()) return true;
        // Likewise a view this thread holds (its receive lock must stay as it is).
        if (ring->viewer.load(std::memory_order_relaxed) == this_thread_id()) return true;
        const auto head = ring->head.load(std::memory_order_acquire);
        if (ring->tail.load(std::memory_order_acquire) == head) return false;
        // Without the receive lock (its owner may rest on it): a record at an unmoved head is whole.
        RecordHeader header{};
        copy_out(ring, head, &header, sizeof header);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (header.flags == (RecordHeader::first | RecordHeader::last) && ring->head.load(std::memory_order_relaxed) == head)
            return true;
        if (enter_ring_lock(ring->receive_lock, false, Deadline::never()) != Acquired::yes) return true;
        LockGuard guard{ring->receive_lock};
        Consumer consumer(ring);
        for (;;) {
            consumer.skip_leftovers();
            if (!consumer.look()) return false;  // afresh: extent() reads as far as the last look
            auto extent = consumer.extent();
            if (extent == Consumer::Extent::open && stream_ended(ring)) {
                consumer.look();  // the rest may have come just before the sender said it was done
                extent = consumer.extent();
                if (extent == Consumer::Extent::open) extent = Consumer::Extent::cut;
            }
            if (extent == Consumer::Extent::whole) return true;
            if (extent == Consumer::Extent::open) return !ring.half_free();
            consumer.drop_message();
        }
    };
    auto senders_gone = [&] { return senders && !senders->any_alive(); };
    // A corrupt or shut-down ring is "ready": the receive that follows reports it.
    auto ready = [&] {
        try {
            return ring->corrupt.load(std::memory_order_acquire) != 0 || is_shut_down(ring) || has_message();
        } catch (const CorruptSegmentError&) {
            return true;
        }
    };
    if (ready()) return true;
    if (deadline.expired()) return false;
    return wait_for(ring->data_signal, ring->receivers_sleeping, deadline, ready, senders_gone) == RingResult::done;
}
}  // namespace ipc::detail
