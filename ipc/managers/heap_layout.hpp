// managers/heap_layout.hpp — the bytes of a manager's heap segment: the header (robust lock,
// geometry, allocator state, undo journal), the container table, and the blocks of the arena.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ipc/detail/lock_word.hpp"

namespace ipc::detail::heap {

/// Blocks are powers of two, from 32 bytes (16 of header, 16 of payload) up.
inline constexpr std::uint32_t min_class = 5;
/// A process reserves the smallest blocks for itself 2^6 = 64 at a time, as one run: its next
/// allocations then touch neither the shared free lists nor cache lines the other processes write.
inline constexpr std::uint32_t reserve_shift = 6;
inline constexpr std::uint32_t max_class = 40;
inline constexpr std::size_t block_header_size = 16;
/// The most journaled stores one call makes: a dict erase makes four, an update of up to
/// `journaled_update_pairs` keys four per key; larger changes are built apart.
inline constexpr std::uint32_t journal_capacity = 64;
inline constexpr std::size_t journaled_update_pairs = 8;

enum BlockState : std::uint32_t { block_used = 0x55534544, block_free = 0x46524545 };

/// Before every block's payload. A free block's payload begins with the next free block's offset.
struct BlockHeader {
    std::uint32_t size_class;  // the block is 1 << size_class bytes, header included
    std::uint32_t state;       // BlockState
    std::uint64_t length;      // payload bytes in use
};
static_assert(sizeof(BlockHeader) == block_header_size);

/// One journaled store: the 8-byte word at `offset` (from the payload's start) held `before`.
struct JournalEntry {
    std::uint64_t offset;
    std::uint64_t before;
};

struct ContainerSlot {
    std::uint32_t kind;  // ContainerKind
    std::uint32_t reserved;
    std::uint64_t key_tag;
    std::uint64_t value_tag;
    std::uint64_t root;  // the container's table block
};

enum class ManagerState : std::uint32_t { starting = 0, running = 1, shut_down = 2 };

struct HeapHeader {
    LockWord lock;
    // Geometry, written once by the creator; every opener checks it against its own mapping and
    // keeps its own copy, so nothing read later from shared memory can move a bound.
    std::uint64_t payload_size;
    std::uint64_t containers_offset;
    std::uint64_t container_capacity;
    std::uint64_t arena_offset;
    std::uint64_t arena_end;
    // The manager process, written by it when it starts.
    std::atomic<std::uint32_t> state;
    std::uint32_t manager_pid;
    std::uint32_t manager_birth;
    std::atomic<std::uint32_t> corrupt;
    // Under the lock. The allocator's state is rebuilt from the containers after a holder died, so
    // only the container stores are journaled.
    std::uint64_t bump;
    std::uint64_t free_heads[max_class + 1];
    std::uint64_t container_count;
    std::atomic<std::uint64_t> journal_size;
    JournalEntry journal[journal_capacity];
    // Under the lock: raised whenever free blocks are listed anew (a merge, a rebuild), which ends
    // every process's reserve of small blocks (they are on the free lists then).
    std::uint64_t reserve_epoch;
};

/// A dict's table block: this, then `index_size` 32-bit index slots (0 empty, `deleted`, or an
/// entry's number + 1), then `capacity` entries in insertion order (key 0: erased).
struct DictTable {
    std::uint64_t used;  // entries written, erased ones included
    std::uint64_t live;
    std::uint64_t capacity;
    std::uint64_t index_size;  // 2 × capacity, a power of two
};
struct DictEntry {
    std::uint64_t hash;
    std::uint64_t key;    // block offset
    std::uint64_t value;  // block offset
};
inline constexpr std::uint32_t index_deleted = 0xFFFFFFFFu;
inline constexpr std::uint64_t min_dict_capacity = 8;

/// A list's table block: this, then `capacity` item block offsets.
struct ListTable {
    std::uint64_t size;
    std::uint64_t capacity;
};
inline constexpr std::uint64_t min_list_capacity = 8;

}  // namespace ipc::detail::heap
