// tests/fuzz/fuzz_ring_input.hpp — how fuzz_ring reads its input, shared with the seed writer: a
// fixed block of fields that become the ring's positions and counters, then the ring's data bytes.
#pragma once

#include <cstdint>

namespace ipc::fuzz {

inline constexpr std::uint64_t fuzz_ring_capacity = 4096;

/// The start of a fuzz_ring input (native byte order, no padding). Positions are relative to one
/// another, so that most inputs are rings a sender could have left, not noise the first check refuses.
struct RingInput {
    std::uint64_t base;                   // head = base + head_offset
    std::uint32_t head_offset;
    std::int32_t tail_delta;              // tail = head + tail_delta
    std::int32_t seen_tail_delta;         // receiver_seen_tail = head + seen_tail_delta
    std::int32_t journal_tail_delta;      // journal_tail = tail + journal_tail_delta
    std::int32_t journal_head_delta;      // journal_head = head + journal_head_delta
    std::int32_t sender_seen_head_delta;  // sender_seen_head = head + sender_seen_head_delta
    std::uint32_t max_size;               // ring_receive's limit; 0xffffffff: none
    std::uint16_t message_size;           // what ring_send sends
    std::uint8_t received;                // received, and the other counters relative to it
    std::uint8_t sent_delta;
    std::int8_t journal_sent_delta;
    std::int8_t journal_received_delta;
    std::uint8_t sender_seen_received_lag;
    std::uint8_t max_messages;
    std::uint8_t flags;                   // the bits below
    std::uint8_t reserved[3];
    static constexpr std::uint8_t streaming = 1, corrupt = 2, pollers = 4;
};
static_assert(sizeof(RingInput) == 48);

}  // namespace ipc::fuzz
