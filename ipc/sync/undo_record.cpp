// sync/undo_record.cpp — a Semaphore's record of which process holds how many units (undo_record.hpp).
#include "sync/undo_record.hpp"

#include <algorithm>
#include <limits>

#include "ipc/detail/deadline.hpp"
#include "ipc/detail/thread_id.hpp"
#include "shm/liveness.hpp"

namespace ipc::detail {

namespace {

/// The record's lock for one call; a change that a holder killed halfway left is rolled back first.
class RecordLock {
public:
    RecordLock(UndoRecord& record, std::atomic<std::uint32_t>& value) : record_(record) {
        if (acquire_lock(record.lock, this_thread_id(), true, Deadline::never()) == Acquired::owner_died &&
            record.journal.active.load(std::memory_order_acquire) != 0) {
            value.store(record.journal.value, std::memory_order_relaxed);
            record.holders[record.journal.slot] = record.journal.before;
            record.journal.active.store(0, std::memory_order_release);
        }
    }
    ~RecordLock() { release_lock(record_.lock); }
    RecordLock(const RecordLock&) = delete;
    RecordLock& operator=(const RecordLock&) = delete;

private:
    UndoRecord& record_;
};

/// Sets the count and one slot together, journaled (see UndoRecord).
void change(UndoRecord& record, std::atomic<std::uint32_t>& value, std::size_t index, std::uint32_t new_value,
            UndoRecord::Slot new_slot) {
    auto& journal = record.journal;
    journal.slot = static_cast<std::uint32_t>(index);
    journal.value = value.load(std::memory_order_relaxed);
    journal.before = record.holders[index];
    journal.active.store(1, std::memory_order_release);
    value.store(new_value, std::memory_order_seq_cst);
    record.holders[index] = new_slot;
    journal.active.store(0, std::memory_order_release);
}

std::uint64_t this_holder() { return pack_holder(this_process_id(), this_process_birth()); }

std::uint32_t ceiling(std::uint32_t maximum) {
    return maximum != 0 ? maximum : static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max());
}

std::uint32_t reclaim_locked(UndoRecord& record, std::atomic<std::uint32_t>& value, std::uint32_t maximum) {
    const auto me = this_holder();
    std::uint32_t returned = 0;
    for (std::size_t i = 0; i < UndoRecord::slots; ++i) {
        const auto slot = record.holders[i];
        if (slot.holder == 0 || slot.holder == me || alive(slot.holder)) continue;
        const auto now = value.load(std::memory_order_relaxed);
        const auto back = std::min(slot.units, ceiling(maximum) - std::min(now, ceiling(maximum)));
        change(record, value, i, now + back, {});
        returned += back;
    }
    return returned;
}

}  // namespace

UndoTake undo_take(UndoRecord& record, std::atomic<std::uint32_t>& value, std::uint32_t maximum) {
    RecordLock lock(record, value);
    const auto now = value.load(std::memory_order_relaxed);
    if (now == 0) return UndoTake::none_free;
    const auto me = this_holder();
    auto find = [&]() -> UndoRecord::Slot* {
        UndoRecord::Slot* free = nullptr;
        for (auto& slot : record.holders) {
            if (slot.holder == me) return &slot;
            if (slot.holder == 0 && free == nullptr) free = &slot;
        }
        return free;
    };
    auto* slot = find();
    if (slot == nullptr) {
        reclaim_locked(record, value, maximum);
        slot = find();
    }
    if (slot == nullptr) return UndoTake::record_full;
    change(record, value, static_cast<std::size_t>(slot - record.holders), value.load(std::memory_order_relaxed) - 1,
           {me, slot->units + 1});
    return UndoTake::taken;
}

bool undo_give(UndoRecord& record, std::atomic<std::uint32_t>& value, std::uint32_t n, std::uint32_t maximum) {
    RecordLock lock(record, value);
    const auto now = value.load(std::memory_order_relaxed);
    if (n > ceiling(maximum) - std::min(now, ceiling(maximum))) return false;
    const auto me = this_holder();
    std::size_t index = UndoRecord::slots;
    for (std::size_t i = 0; i < UndoRecord::slots; ++i)
        if (record.holders[i].holder == me) index = i;
    if (index == UndoRecord::slots) {  // this process holds none: nothing to record
        value.store(now + n, std::memory_order_seq_cst);
        return true;
    }
    auto slot = record.holders[index];
    slot.units -= std::min(slot.units, n);
    if (slot.units == 0) slot.holder = 0;
    change(record, value, index, now + n, slot);
    return true;
}

std::uint32_t undo_reclaim(UndoRecord& record, std::atomic<std::uint32_t>& value, std::uint32_t maximum) {
    RecordLock lock(record, value);
    return reclaim_locked(record, value, maximum);
}

}  // namespace ipc::detail
