// tests/fuzz/fuzz_ring.cpp — libFuzzer target for the ring's general receives, poll and send on a ring
// whose shared state another process may have written anything into: positions, counters and data
// come from the input (fuzz_ring_input.hpp), the locks are free. Each call may fail only with an
// ipc::Error (CorruptSegmentError); a crash, a hang or a sanitizer report is a bug in the ring.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "fuzz_ring_input.hpp"
#include "fuzz_support.hpp"
#include "ipc/detail/deadline.hpp"
#include "ipc/detail/ring.hpp"
#include "ipc/error.hpp"

namespace {

using ipc::detail::Deadline;
using ipc::detail::RingState;
using ipc::detail::RingWait;
using ipc::fuzz::RingInput;


/// Lays the input over a fresh state: positions, counters, flags, then the data bytes.
void lay_out(RingState& state, const RingInput& in, std::span<const std::byte> data) {
    const std::uint64_t head = in.base + in.head_offset;
    const std::uint64_t tail = head + static_cast<std::uint64_t>(static_cast<std::int64_t>(in.tail_delta));
    auto relative = [](std::uint64_t from, std::int64_t delta) { return from + static_cast<std::uint64_t>(delta); };
    state.head.store(head);
    state.journal_head.store(relative(head, in.journal_head_delta));
    state.tail.store(tail);
    state.journal_tail.store(relative(tail, in.journal_tail_delta));
    state.receiver_seen_tail = relative(head, in.seen_tail_delta);
    state.sender_seen_head = relative(head, in.sender_seen_head_delta);
    const std::uint64_t received = in.received;
    const std::uint64_t sent = received + in.sent_delta;
    state.received.store(received);
    state.journal_received.store(relative(received, in.journal_received_delta));
    state.sent.store(sent);
    state.journal_sent.store(relative(sent, in.journal_sent_delta));
    state.sender_seen_received = received - in.sender_seen_received_lag;
    state.max_messages = in.max_messages;
    state.streaming.store((in.flags & RingInput::streaming) ? 1 : 0);
    state.corrupt.store((in.flags & RingInput::corrupt) ? 1 : 0);
    state.pollers.store((in.flags & RingInput::pollers) ? RingState::fileno_poller : 0);
    // The lock words stay as the constructor made them (free), so every call takes its lock.
    std::memcpy(state.data(), data.data(), std::min<std::size_t>(data.size(), ipc::fuzz::fuzz_ring_capacity));
}

template <class Call>
void call(Call&& body) {
    try {
        body();
    } catch (const ipc::Error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static ipc::fuzz::MemoryRing memory(ipc::fuzz::fuzz_ring_capacity);
    if (size < sizeof(RingInput)) return 0;
    RingInput in;
    std::memcpy(&in, data, sizeof in);
    auto& state = memory.reset();
    lay_out(state, in, std::as_bytes(std::span(data + sizeof in, size - sizeof in)));
    const ipc::detail::Ring ring(state, "fuzz ring");

    const std::uint64_t max_size = in.max_size == 0xffffffffu ? ~std::uint64_t{0} : in.max_size;
    const auto now = [] { return Deadline::after(std::chrono::nanoseconds(0)); };
    std::vector<std::byte> out;
    std::vector<std::byte> message(in.message_size % (3 * ipc::fuzz::fuzz_ring_capacity));
    for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<std::byte>(i * 7);
    const ipc::detail::MessageParts parts{std::span<const std::byte>(message), {}, {}};

    // A blocking receive whose deadline has passed, as get(timeout) ends: it may keep part of a
    // streamed message for the next receive, which goes on with it.
    call([&] { ipc::detail::ring_receive(ring, out, now(), nullptr, max_size, RingWait::block); });
    call([&] { ipc::detail::ring_receive(ring, out, now(), nullptr, max_size, RingWait::immediate); });
    call([&] { ipc::detail::ring_poll(ring, now(), nullptr); });
    call([&] { ipc::detail::ring_send(ring, parts, now(), nullptr, RingWait::immediate); });
    call([&] { ipc::detail::ring_receive(ring, out, now(), nullptr, max_size, RingWait::immediate); });
    call([&] { ipc::detail::ring_poll(ring, now(), nullptr); });
    // A message read in place must lie inside the ring's data (ASan checks every byte read), and
    // a loan too.
    call([&] {
        ipc::detail::RingView view;
        (void)ipc::detail::ring_receive_view(ring, out, view, now(), nullptr, max_size);
        if (view.data == nullptr) return;
        unsigned sum = 0;
        for (std::size_t i = 0; i < view.size; ++i) sum += static_cast<unsigned>(view.data[i]);
        [[maybe_unused]] volatile unsigned read = sum;
        ipc::detail::ring_release_view(ring, view);
    });
    call([&] {
        ipc::detail::RingLoan loan;
        if (ipc::detail::ring_lend(ring, message.size() % (ipc::detail::ring_max_loan(ring) + 1), now(), nullptr, loan) !=
            ipc::detail::RingResult::done)
            return;
        if (loan.size != 0) std::memset(loan.data, 0x5a, loan.size);
        ipc::detail::ring_publish_loan(ring, loan, loan.size);
    });
    call([&] { ipc::detail::ring_receive(ring, out, now(), nullptr, max_size, RingWait::immediate); });
    // This thread may rest on the ring's locks, or hold a message it left unfinished: let go, as
    // a closing handle does, before the next input lays a new ring over this one.
    ipc::detail::ring_let_go(ring);
    return 0;
}
