// sync/condition_state.hpp — a Condition's shared state: one slot per waiter, each naming the
// thread that waits in it, so a notification skips waiters that died and their slots come back.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace ipc::detail {

/// One waiter of a Condition: it sleeps on its own word, so notify(n) wakes exactly the chosen ones.
struct ConditionSlot {
    static constexpr std::uint32_t free = 0, claimed = 1, waiting = 2, notified = 3;
    std::atomic<std::uint32_t> state{free};  // the futex word the waiter sleeps on
    std::uint32_t unused = 0;
    std::atomic<std::uint64_t> waiter{0};  // pack_holder(tid, birth) of its thread; 0: the slot is free
    std::uint64_t ticket = 0;              // arrival order, so notify wakes the longest waiters first
};

struct alignas(64) ConditionState {
    static constexpr std::size_t slot_count = 1024;
    std::atomic<std::uint64_t> next_ticket{0};
    std::atomic<std::uint32_t> waiters{0};     // may count a dead waiter or two: "maybe someone waits"
    std::atomic<std::uint32_t> slots_used{0};  // high-water mark: notify scans no further
    ConditionSlot slots[slot_count];
};

}  // namespace ipc::detail
