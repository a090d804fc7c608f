// managers/tables.hpp — checked views of a container's table block (a dict's index and entries, a
// list's items): every count and offset read from the heap is checked before it is used.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "managers/heap.hpp"
#include "managers/heap_layout.hpp"

namespace ipc::detail {

/// A dict's table, checked: `used <= capacity`, the index and entries inside the block.
struct DictView {
    heap::DictTable* table = nullptr;
    std::span<std::uint32_t> index;
    std::span<heap::DictEntry> entries;  // all `capacity` of them

    /// Bytes a table of `capacity` entries takes.
    static std::size_t bytes_for(std::uint64_t capacity) noexcept;
    static DictView of(const ManagerHeap& heap, std::uint64_t block);
    /// A new, empty table of `capacity` (a power of two) in a new block.
    static DictView make(ManagerHeap& heap, std::uint64_t capacity, std::uint64_t& block);
    /// The entry `slot` names (checked to lie below `used`).
    [[nodiscard]] heap::DictEntry& entry_of(const ManagerHeap& heap, std::uint32_t slot) const;
};

/// A list's table, checked: `size <= capacity`, the items inside the block.
struct ListView {
    heap::ListTable* table = nullptr;
    std::span<std::uint64_t> items;  // all `capacity` of them

    static std::size_t bytes_for(std::uint64_t capacity) noexcept;
    static ListView of(const ManagerHeap& heap, std::uint64_t block);
    static ListView make(ManagerHeap& heap, std::uint64_t capacity, std::uint64_t& block);
};

/// Calls `visit` with every block container `index` reaches: its table and every key, value and item.
void for_each_block_of(const ManagerHeap& heap, std::uint32_t index, const std::function<void(std::uint64_t)>& visit);

}  // namespace ipc::detail
