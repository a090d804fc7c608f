// ipc/detail/ring_shortcut.hpp — the common send and receive of a ring, inline: a small message that
// needs no wait, from the thread that keeps the ring's lock, costs a few dozen instructions and no call.
#pragma once

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "ipc/detail/evict.hpp"
#include "ipc/detail/ring.hpp"

namespace ipc::detail {

// Why inline (always: GCC would rather call them): the stores a call chain makes (return addresses, saved registers, arguments on the
// stack) wait in the CPU's store buffer, in order, behind the stores into the ring, whose lines
// must first come over from the receiver's CPU. Once the buffer is full, the sender stalls; with a
// few dozen stores per message it stalls on every one (measured: 32 extra stores per message cut
// a minimal ring from 44 to 17 M messages/s). The shortcuts make about a dozen.

/// What a shortcut did. `taken_signal`: the message went, and someone polls the ring's readiness
/// descriptors (or an event loop waits for room that this receive made): the caller signals them.
enum class Shortcut { not_taken, taken, taken_signal };

/// Wake whoever sleeps for a message, or for room (out of line: rare, and a system call).
void ring_wake_receivers(RingState& ring) noexcept;
bool ring_wake_senders(RingState& ring) noexcept;

/// A message the send shortcut writes straight into the ring: `size()` bytes, which
/// `write_to(target)` writes into that much contiguous memory. Passed whole to the inlined shortcut,
/// so its parts stay in registers: copying a list of spans through the stack loaded 16 bytes that
/// two 8-byte stores had just written, a failed store-to-load forward that waited for every store
/// into the ring to reach the receiver's CPU first (measured: 92 % of a typed sender's time).
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
[[gnu::always_inline]] inline Shortcut ring_send_fast(RingState& ring, const Message& message) noexcept {
    const std::uint64_t size = message.size();
    if (size > ring_max_unstreamed(ring)) return Shortcut::not_taken;
    if (!enter_resting(ring.send_lock, this_thread_id())) return Shortcut::not_taken;
    const auto tail = ring.journal_tail.load(std::memory_order_relaxed);
    const auto sent = ring.sent.load(std::memory_order_relaxed);
    const auto footprint = record_footprint(size);
    const auto free = ring.capacity - (tail - ring.sender_seen_head);
    const auto mask = ring.capacity - 1;
    const auto offset = tail & mask;
    if (free < footprint || offset + sizeof(RecordHeader) + size > ring.capacity ||
        (ring.max_messages != 0 && sent - std::min(sent, ring.sender_seen_received) >= ring.max_messages)) {
        exit_ring_lock(ring.send_lock);
        return Shortcut::not_taken;
    }
    prefetch_ahead(ring, tail, footprint, free);
    const RecordHeader header{static_cast<std::uint32_t>(size), RecordHeader::first | RecordHeader::last, size};
    std::memcpy(ring.data() + offset, &header, sizeof header);
    message.write_to(ring.data() + offset + sizeof header);
    publish_records(ring, tail + footprint, sent + 1);
    // After the publish, as in ring_send: a receiver about to sleep, or a poller that registers
    // now, pairs its heavy fence with this one, so one of the two sees the other.
    light_fence();
    if (ring.receivers_sleeping.load(std::memory_order_relaxed) != 0) ring_wake_receivers(ring);
    const bool signal = ring.pollers.load(std::memory_order_relaxed) != 0;
    exit_ring_lock(ring.send_lock);
    return signal ? Shortcut::taken_signal : Shortcut::taken;
}

/// A whole message in the ring, for a receive shortcut to copy out (in pieces, if it likes).
struct RecordView {
    RingState& ring;
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
[[gnu::always_inline]] inline Shortcut ring_receive_fast(RingState& ring, std::uint64_t max_size, Take&& take) {
    if (!enter_resting(ring.receive_lock, this_thread_id())) return Shortcut::not_taken;
    struct Exit {
        RingLock& lock;
        ~Exit() { exit_ring_lock(lock); }
    } exit{ring.receive_lock};
    const auto head = ring.head.load(std::memory_order_relaxed);
    auto seen_tail = ring.receiver_seen_tail;
    if (seen_tail <= head) {  // look at the sender's line only when the last look is used up
        seen_tail = ring.tail.load(std::memory_order_acquire);
        ring.receiver_seen_tail = seen_tail;
        if (seen_tail <= head) return Shortcut::not_taken;
    }
    RecordHeader header;
    std::memcpy(&header, ring.data() + (head & (ring.capacity - 1)), sizeof header);
    if (header.flags != (RecordHeader::first | RecordHeader::last) || header.total > max_size) return Shortcut::not_taken;
    if (!take(RecordView{ring, head + sizeof header, header.total})) return Shortcut::not_taken;
    const auto new_head = head + record_footprint(header.chunk);
    retire_records(ring, new_head, ring.received.load(std::memory_order_relaxed) + 1);
    evict_record(ring, head, new_head - head);
    light_fence();  // pairs with a sender's heavy fence before it sleeps for room
    bool signal = ring.pollers.load(std::memory_order_relaxed) != 0;
    if (ring.senders_sleeping.load(std::memory_order_relaxed) != 0 && room_for_senders(ring, seen_tail, new_head))
        signal = ring_wake_senders(ring) || signal;
    return signal ? Shortcut::taken_signal : Shortcut::taken;
}

/// What a Connection end's shortcuts need: its rings, and a holder of the other end seen at the
/// last full look. Every few dozen sends, and whenever that holder's slot empties (a closed end),
/// a send takes the general way, which looks again (also at /proc, every 50 ms at most, for a
/// reader that was killed). So sends to readers that all died without closing go into the ring
/// for at most that long, or until it is full, before BrokenPipeError, as a kernel pipe's reader
/// killed with data unread loses that data. The counter is a plain load and store: racing senders
/// may only look a little sooner or later.
struct EndShortcut {
    static constexpr std::uint32_t sends_per_look = 64;
    std::atomic<RingState*> in{nullptr};   // null once the end is closed, or on a write-only end
    std::atomic<RingState*> out{nullptr};  // null once the end is closed, or on a read-only end
    std::atomic<const std::atomic<std::uint32_t>*> reader{nullptr};
    std::atomic<std::uint32_t> sends_until_look{0};

    template <RingMessage Message>
    [[gnu::always_inline]] Shortcut send(const Message& message) noexcept {
        auto* ring = out.load(std::memory_order_relaxed);
        const auto looks = sends_until_look.load(std::memory_order_relaxed);
        const auto* holder = reader.load(std::memory_order_relaxed);
        if (ring == nullptr || looks == 0 || holder == nullptr || holder->load(std::memory_order_relaxed) == 0)
            return Shortcut::not_taken;
        const auto result = ring_send_fast(*ring, message);
        if (result != Shortcut::not_taken) sends_until_look.store(looks - 1, std::memory_order_relaxed);
        return result;
    }
};

}  // namespace ipc::detail
