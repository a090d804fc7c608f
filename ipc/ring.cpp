#include "ipc/detail/ring.hpp"

#include <algorithm>
#include <cstring>

#include "ipc/error.hpp"

namespace ipc::detail {

namespace {

/// Every record starts with this header, 16 bytes at a 16-byte boundary: it never wraps.
struct RecordHeader {
    static constexpr std::uint32_t first = 1, last = 2, abort = 4;
    std::uint32_t chunk;  // payload bytes in this record
    std::uint32_t flags;
    std::uint64_t total;  // the whole message's size (in every chunk, so a reader can check early)
};
static_assert(sizeof(RecordHeader) == 16);

constexpr std::uint64_t round16(std::uint64_t n) noexcept { return (n + 15) & ~std::uint64_t{15}; }
constexpr std::uint64_t footprint(std::uint64_t chunk) noexcept { return sizeof(RecordHeader) + round16(chunk); }

// How often a sleeping side looks whether its peers still live (grows to the maximum).
constexpr auto first_peer_check = std::chrono::milliseconds(10);
constexpr auto last_peer_check = std::chrono::milliseconds(200);

void copy_in(RingState& ring, std::uint64_t position, const void* source, std::size_t size) noexcept {
    const auto mask = ring.capacity - 1;
    const auto offset = position & mask;
    const auto first_part = std::min<std::uint64_t>(size, ring.capacity - offset);
    std::memcpy(ring.data() + offset, source, first_part);
    std::memcpy(ring.data(), static_cast<const std::byte*>(source) + first_part, size - first_part);
}

void copy_out(RingState& ring, std::uint64_t position, void* target, std::size_t size) noexcept {
    if (size == 0) return;  // an empty message's buffer may have no storage at all
    const auto mask = ring.capacity - 1;
    const auto offset = position & mask;
    const auto first_part = std::min<std::uint64_t>(size, ring.capacity - offset);
    std::memcpy(target, ring.data() + offset, first_part);
    std::memcpy(static_cast<std::byte*>(target) + first_part, ring.data(), size - first_part);
}

/// Wakes whoever sleeps on `signal`, at most once per sleep: a sleeper raises `sleeping` before its
/// last look at the ring, and the first waker to lower it pays for the system call.
void wake(std::atomic<std::uint32_t>& signal, std::atomic<std::uint32_t>& sleeping) noexcept {
    // The fence orders the caller's publish before its look at `sleeping`; with the sleeper's
    // seq_cst store before its own last look, one of the two always sees the other.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleeping.load(std::memory_order_relaxed) != 0 && sleeping.exchange(0, std::memory_order_acq_rel) != 0) {
        signal.fetch_add(1, std::memory_order_release);
        futex_wake(signal);
    }
}

/// Sleeps on `signal` until `ready()` or the deadline; every few ms asks `peer_gone()`.
template <class Ready, class Gone>
RingResult wait_for(std::atomic<std::uint32_t>& signal, std::atomic<std::uint32_t>& sleeping, const Deadline& deadline,
                    Ready ready, Gone peer_gone) {
    if (spin_until(ready)) return RingResult::done;
    auto check_after = std::chrono::duration_cast<std::chrono::nanoseconds>(first_peer_check);
    for (;;) {
        const auto seen = signal.load(std::memory_order_acquire);
        sleeping.store(1, std::memory_order_seq_cst);
        if (ready()) return RingResult::done;  // a stale flag costs one spare wake-up, no more
        const bool woken = futex_wait(signal, seen, deadline.or_sooner(check_after));
        if (ready()) return RingResult::done;
        if (!woken) {
            if (deadline.expired()) return RingResult::timed_out;
            if (peer_gone()) return ready() ? RingResult::done : RingResult::peer_gone;
            check_after = std::min<std::chrono::nanoseconds>(check_after * 2, last_peer_check);
        }
    }
}

class Sender {
public:
    Sender(RingState& ring, const Holders* receivers) : ring_(ring), receivers_(receivers) {}

    /// Writes one record once `reserve` bytes beyond it are free too.
    RingResult write(std::uint32_t flags, std::span<const std::byte> chunk, std::uint64_t total, std::uint64_t reserve,
                     const Deadline& deadline) {
        const auto need = footprint(chunk.size()) + reserve;
        const auto tail = ring_.tail.load(std::memory_order_relaxed);  // only the lock holder moves it
        // A new message also needs a free place under a Queue's maxsize.
        const bool counts = (flags & RecordHeader::first) && ring_.max_messages != 0;
        const auto sent = ring_.sent.load(std::memory_order_relaxed);
        // Judge by what we saw of the receiver last time; look again only when that is not enough.
        auto fits = [&] {
            return ring_.capacity - (tail - ring_.sender_seen_head) >= need &&
                   (!counts || sent - ring_.sender_seen_received < ring_.max_messages);
        };
        auto has_room = [&] {
            ring_.sender_seen_head = ring_.head.load(std::memory_order_acquire);
            ring_.sender_seen_received = ring_.received.load(std::memory_order_acquire);
            return fits();
        };
        if (!fits() && !has_room()) {
            auto gone = [&] { return receivers_ && !receivers_->any_alive(); };
            if (auto result = wait_for(ring_.space_signal, ring_.senders_sleeping, deadline, has_room, gone);
                result != RingResult::done)
                return result;
        }
        const RecordHeader header{static_cast<std::uint32_t>(chunk.size()), flags, total};
        copy_in(ring_, tail, &header, sizeof header);
        if (!chunk.empty()) copy_in(ring_, tail + sizeof header, chunk.data(), chunk.size());
        if (flags & RecordHeader::last) ring_.sent.store(sent + 1, std::memory_order_relaxed);
        ring_.tail.store(tail + footprint(chunk.size()), std::memory_order_release);  // the publish
        wake(ring_.data_signal, ring_.receivers_sleeping);
        return RingResult::done;
    }

private:
    RingState& ring_;
    const Holders* receivers_;
};

struct LockGuard {
    LockWord& word;
    ~LockGuard() { release_lock(word); }
};

}  // namespace

bool Holders::add(std::uint32_t owner) noexcept {
    for (auto& slot : pid) {
        std::uint32_t seen = slot.load(std::memory_order_relaxed);
        // A slot is free when empty or when its holder died without closing.
        if ((seen == 0 || !id_alive(seen)) && slot.compare_exchange_strong(seen, owner)) return true;
    }
    return false;
}

void Holders::remove(std::uint32_t owner) noexcept {
    for (auto& slot : pid) {
        std::uint32_t expected = owner;
        if (slot.compare_exchange_strong(expected, 0)) return;
    }
}

bool Holders::any_alive(std::uint32_t except) const noexcept {
    for (const auto& slot : pid) {
        const auto holder = slot.load(std::memory_order_acquire);
        if (holder != 0 && holder != except && id_alive(holder)) return true;
    }
    return false;
}

RingResult ring_send(RingState& ring, std::span<const std::byte> message, const Deadline& deadline,
                     const Holders* receivers) {
    const auto me = this_thread_id();
    const auto acquired = acquire_lock(ring.send_lock, me, true, deadline);
    if (acquired == Acquired::timed_out) return RingResult::timed_out;
    LockGuard guard{ring.send_lock};
    Sender sender(ring, receivers);
    if (acquired == Acquired::owner_died && ring.streaming.load(std::memory_order_relaxed)) {
        // The previous sender died between the chunks of a message: tell readers to drop it.
        // Its last chunk left room for exactly this record.
        sender.write(RecordHeader::abort, {}, 0, 0, Deadline::never());
        ring.streaming.store(0, std::memory_order_relaxed);
    }
    const std::uint64_t max_chunk = ring.capacity / 2 - 2 * sizeof(RecordHeader);
    if (message.size() <= max_chunk)
        return sender.write(RecordHeader::first | RecordHeader::last, message, message.size(), 0, deadline);

    // Stream: every chunk but the last keeps room for an abort record, so a sender that gives up
    // (timeout, dead reader) or dies can always close the message it began.
    ring.streaming.store(1, std::memory_order_relaxed);
    std::uint64_t sent = 0;
    while (sent < message.size()) {
        const auto size = std::min<std::uint64_t>(max_chunk, message.size() - sent);
        std::uint32_t flags = (sent == 0 ? RecordHeader::first : 0) | (sent + size == message.size() ? RecordHeader::last : 0);
        const auto result = sender.write(flags, message.subspan(sent, size), message.size(),
                                         (flags & RecordHeader::last) ? 0 : sizeof(RecordHeader), deadline);
        if (result != RingResult::done) {
            if (sent > 0) sender.write(RecordHeader::abort, {}, 0, 0, Deadline::never());
            ring.streaming.store(0, std::memory_order_relaxed);
            return result;
        }
        sent += size;
    }
    ring.streaming.store(0, std::memory_order_relaxed);
    return RingResult::done;
}

Received ring_receive(RingState& ring, std::vector<std::byte>& out, const Deadline& deadline, const Holders* senders,
                      std::uint64_t max_size) {
    const auto me = this_thread_id();
    if (acquire_lock(ring.receive_lock, me, true, deadline) == Acquired::timed_out) return {RingResult::timed_out};
    // A receiver that died here consumed at most part of one message; its remains are skipped below.
    LockGuard guard{ring.receive_lock};

    auto head = ring.head.load(std::memory_order_relaxed);
    // The tail we saw last time still counts; look at the sender's line only when it is used up.
    auto available = [&] {
        if (ring.receiver_seen_tail > head) return true;
        ring.receiver_seen_tail = ring.tail.load(std::memory_order_acquire);
        return ring.receiver_seen_tail > head;
    };
    auto senders_gone = [&] { return senders && !senders->any_alive(); };
    auto consume = [&](const RecordHeader& header) {
        head += footprint(header.chunk);
        ring.head.store(head, std::memory_order_release);
        if (header.flags & RecordHeader::last)
            ring.received.store(ring.received.load(std::memory_order_relaxed) + 1, std::memory_order_release);
        // A sleeping sender is woken once half the ring is free (every record fits in half), or a
        // place under maxsize opened: one wake-up per many messages, not one per message.
        const bool half_free = ring.receiver_seen_tail - head <= ring.capacity / 2;
        if (half_free || (ring.max_messages != 0 && ring.waiting() < ring.max_messages))
            wake(ring.space_signal, ring.senders_sleeping);
    };

    for (;;) {
        if (!available()) {
            if (auto result = wait_for(ring.data_signal, ring.receivers_sleeping, deadline, available, senders_gone);
                result != RingResult::done)
                return {result};
        }
        RecordHeader header{};
        copy_out(ring, head, &header, sizeof header);
        if (!(header.flags & RecordHeader::first)) {  // the rest of an abandoned message, or an abort
            consume(header);
            continue;
        }
        if (header.total > max_size) return {RingResult::done, true, header.total};
        out.resize(header.total);
        copy_out(ring, head + sizeof header, out.data(), header.chunk);
        std::uint64_t received = header.chunk;
        consume(header);
        bool complete = header.flags & RecordHeader::last;
        // The rest of a streamed message: its sender is writing now, so wait for it without the
        // caller's deadline; only its death (an abort record, or a new message) ends the wait.
        while (!complete) {
            auto stream_broken = [&] {
                const auto owner = lock_owner(ring.send_lock);
                return owner == 0 ? false : !id_alive(owner);
            };
            if (!available() &&
                wait_for(ring.data_signal, ring.receivers_sleeping, Deadline::never(), available, stream_broken) !=
                    RingResult::done)
                break;  // its sender died: drop what we have
            copy_out(ring, head, &header, sizeof header);
            if (header.flags & (RecordHeader::first)) break;  // a new message began: ours was abandoned
            if (header.flags & RecordHeader::abort) {
                consume(header);
                break;
            }
            copy_out(ring, head + sizeof header, out.data() + received, header.chunk);
            received += header.chunk;
            consume(header);
            complete = header.flags & RecordHeader::last;
        }
        if (complete) return {RingResult::done, false, header.total};
    }
}

bool ring_poll(RingState& ring, const Deadline& deadline, const Holders* senders) {
    auto available = [&] {
        return ring.tail.load(std::memory_order_acquire) != ring.head.load(std::memory_order_acquire);
    };
    auto senders_gone = [&] { return senders && !senders->any_alive(); };
    if (available()) return true;
    if (deadline.expired()) return false;
    return wait_for(ring.data_signal, ring.receivers_sleeping, deadline, available, senders_gone) == RingResult::done;
}

}  // namespace ipc::detail
