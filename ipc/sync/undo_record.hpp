// sync/undo_record.hpp — which process holds how many of a Semaphore's units, for a Semaphore made
// with HolderDeath::returns_units (SysV's SEM_UNDO): the units of a process that died come back.
#pragma once

#include <atomic>
#include <cstdint>

#include "ipc/detail/lock_word.hpp"

namespace ipc::detail {

/// Every change of the count and of a holder's units happens under `lock`, a robust lock, and is
/// journaled first: a process killed halfway leaves a journal the next holder of the lock rolls
/// back, so a unit is never both taken and unrecorded, nor recorded and not taken.
struct UndoRecord {
    static constexpr std::size_t slots = 64;  // processes holding units at one time
    struct Slot {
        std::uint64_t holder = 0;  // pack_holder(pid, birth); 0: free
        std::uint32_t units = 0;
    };
    struct Journal {
        std::atomic<std::uint32_t> active{0};
        std::uint32_t slot = 0;
        std::uint32_t value = 0;  // the count before the change
        Slot before;              // the slot before the change
    };
    LockWord lock;
    Journal journal;
    Slot holders[slots];
};

enum class UndoTake { taken, none_free, record_full };
/// Takes a unit of `value` for this process, recording it. record_full: every slot holds a live
/// process (nothing was taken).
UndoTake undo_take(UndoRecord& record, std::atomic<std::uint32_t>& value, std::uint32_t maximum);
/// Gives back `n` units; this process's record drops by as many as it holds. False, and nothing
/// given, when the count would pass a bounded semaphore's `maximum`.
bool undo_give(UndoRecord& record, std::atomic<std::uint32_t>& value, std::uint32_t n, std::uint32_t maximum);
/// Returns the units of holders that died; how many came back.
std::uint32_t undo_reclaim(UndoRecord& record, std::atomic<std::uint32_t>& value, std::uint32_t maximum);

}  // namespace ipc::detail
