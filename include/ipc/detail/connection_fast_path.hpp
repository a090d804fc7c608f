// ipc/detail/connection_fast_path.hpp — what a Connection end's inline sends and receives need: its
// rings, and a holder of the other end seen at the last full look, so a send need not look each time.
#pragma once

#include <atomic>
#include <cstdint>

#include "ipc/detail/ring.hpp"

namespace ipc::detail {

/// Every few dozen sends, and whenever the remembered holder's slot empties (a closed end), a send
/// takes the general way, which looks again (also at /proc, on the liveness schedule, for a reader
/// that was killed). So sends to readers that all died without closing go into the ring for at most
/// that long, or until it is full, before BrokenPipeError, as a kernel pipe's reader killed with
/// data unread loses that data. The counter is a plain load and store: racing senders may only
/// look a little sooner or later.
struct EndFastPath {
    static constexpr std::uint32_t sends_per_look = 64;
    std::atomic<const Ring*> in{nullptr};   // null once the end is closed, or on a write-only end
    std::atomic<const Ring*> out{nullptr};  // null once the end is closed, or on a read-only end
    std::atomic<const std::atomic<std::uint64_t>*> reader{nullptr};  // a slot of the other end's holders
    std::atomic<std::uint32_t> sends_until_look{0};

    template <RingMessage Message>
    [[gnu::always_inline]] FastPath send(const Message& message) noexcept {
        auto* ring = out.load(std::memory_order_relaxed);
        const auto looks = sends_until_look.load(std::memory_order_relaxed);
        const auto* holder = reader.load(std::memory_order_relaxed);
        if (ring == nullptr || looks == 0 || holder == nullptr || holder->load(std::memory_order_relaxed) == 0)
            return FastPath::not_taken;
        const auto result = ring_send_fast(*ring, message);
        if (result != FastPath::not_taken) sends_until_look.store(looks - 1, std::memory_order_relaxed);
        return result;
    }

    /// A loan by the fast path (ring_lend_fast), under the same look at the readers as a send.
    [[gnu::always_inline]] bool lend(std::uint64_t size, RingLoan& loan) noexcept {
        auto* ring = out.load(std::memory_order_relaxed);
        const auto looks = sends_until_look.load(std::memory_order_relaxed);
        const auto* holder = reader.load(std::memory_order_relaxed);
        if (ring == nullptr || looks == 0 || holder == nullptr || holder->load(std::memory_order_relaxed) == 0 ||
            !ring_lend_fast(*ring, size, loan))
            return false;
        sends_until_look.store(looks - 1, std::memory_order_relaxed);
        return true;
    }
};

}  // namespace ipc::detail
