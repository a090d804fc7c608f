// managers/tables.cpp — checked views of container tables (tables.hpp).
#include "managers/tables.hpp"

#include <bit>
#include <string>

namespace ipc::detail {

namespace {

constexpr std::uint64_t largest_capacity = std::uint64_t{1} << 30;

std::uint64_t index_bytes(std::uint64_t capacity) noexcept { return (2 * capacity * sizeof(std::uint32_t) + 7) / 8 * 8; }

}  // namespace

std::size_t DictView::bytes_for(std::uint64_t capacity) noexcept {
    return sizeof(heap::DictTable) + index_bytes(capacity) + capacity * sizeof(heap::DictEntry);
}

DictView DictView::of(const ManagerHeap& heap, std::uint64_t block) {
    const auto bytes = heap.payload(block);
    if (bytes.size() < sizeof(heap::DictTable)) heap.corrupt("a dict table is smaller than its header");
    auto* table = reinterpret_cast<heap::DictTable*>(bytes.data());
    const auto capacity = table->capacity;
    if (capacity < heap::min_dict_capacity || capacity > largest_capacity || !std::has_single_bit(capacity) ||
        table->index_size != 2 * capacity || table->used > capacity || table->live > table->used ||
        bytes.size() < bytes_for(capacity))
        heap.corrupt("a dict table's counts do not fit its block");
    auto* index = reinterpret_cast<std::uint32_t*>(bytes.data() + sizeof(heap::DictTable));
    auto* entries = reinterpret_cast<heap::DictEntry*>(bytes.data() + sizeof(heap::DictTable) + index_bytes(capacity));
    return {table, {index, static_cast<std::size_t>(2 * capacity)}, {entries, static_cast<std::size_t>(capacity)}};
}

DictView DictView::make(ManagerHeap& heap, std::uint64_t capacity, std::uint64_t& block) {
    block = heap.allocate(bytes_for(capacity));
    auto bytes = heap.payload(block);
    std::fill(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(sizeof(heap::DictTable) + index_bytes(capacity)),
              std::byte{0});
    auto* table = reinterpret_cast<heap::DictTable*>(bytes.data());
    *table = {0, 0, capacity, 2 * capacity};
    return of(heap, block);
}

heap::DictEntry& DictView::entry_of(const ManagerHeap& heap, std::uint32_t slot) const {
    if (slot == 0 || slot == heap::index_deleted || slot > table->used)
        heap.corrupt("a dict index slot names entry " + std::to_string(slot) + " of " + std::to_string(table->used));
    return entries[slot - 1];
}

std::size_t ListView::bytes_for(std::uint64_t capacity) noexcept {
    return sizeof(heap::ListTable) + capacity * sizeof(std::uint64_t);
}

ListView ListView::of(const ManagerHeap& heap, std::uint64_t block) {
    const auto bytes = heap.payload(block);
    if (bytes.size() < sizeof(heap::ListTable)) heap.corrupt("a list table is smaller than its header");
    auto* table = reinterpret_cast<heap::ListTable*>(bytes.data());
    const auto capacity = table->capacity;
    if (capacity > largest_capacity || table->size > capacity || bytes.size() < bytes_for(capacity))
        heap.corrupt("a list table's counts do not fit its block");
    auto* items = reinterpret_cast<std::uint64_t*>(bytes.data() + sizeof(heap::ListTable));
    return {table, {items, static_cast<std::size_t>(capacity)}};
}

ListView ListView::make(ManagerHeap& heap, std::uint64_t capacity, std::uint64_t& block) {
    block = heap.allocate(bytes_for(capacity));
    auto* table = reinterpret_cast<heap::ListTable*>(heap.payload(block).data());
    *table = {0, capacity};
    return of(heap, block);
}

void for_each_block_of(const ManagerHeap& heap, std::uint32_t index, const std::function<void(std::uint64_t)>& visit) {
    const auto& slot = heap.container(index);
    visit(slot.root);
    switch (static_cast<ContainerKind>(slot.kind)) {
        case ContainerKind::dict:
        case ContainerKind::namespace_object: {
            const auto dict = DictView::of(heap, slot.root);
            for (std::uint64_t e = 0; e < dict.table->used; ++e) {
                const auto& entry = dict.entries[e];
                if (entry.key == 0) continue;
                visit(entry.key);
                visit(entry.value);
            }
            return;
        }
        case ContainerKind::list: {
            const auto list = ListView::of(heap, slot.root);
            for (std::uint64_t i = 0; i < list.table->size; ++i) visit(list.items[i]);
            return;
        }
    }
    heap.corrupt("container " + std::to_string(index) + " is of no known kind");
}

}  // namespace ipc::detail
