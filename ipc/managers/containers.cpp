// managers/containers.cpp — the dict and list operations a proxy call makes on a manager's heap
// (ipc/detail/manager_heap.hpp): small changes in place through journaled stores, large ones
// (growing, inserting in the middle, sorting) built in a new table and committed by one store.
#include <algorithm>
#include <bit>
#include <cstring>
#include <exception>
#include <limits>
#include <string>

#include "ipc/detail/manager_heap.hpp"
#include "ipc/error.hpp"
#include "managers/heap.hpp"
#include "managers/tables.hpp"

namespace ipc::detail {

namespace {

constexpr std::size_t not_found = std::numeric_limits<std::size_t>::max();

std::uint64_t hash_bytes(EncodedBytes bytes) noexcept {
    std::uint64_t h = 0x9E3779B97F4A7C15ull ^ bytes.size();
    std::size_t i = 0;
    for (; i + 8 <= bytes.size(); i += 8) {
        std::uint64_t word = 0;
        std::memcpy(&word, bytes.data() + i, 8);
        h = (h ^ word) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    std::uint64_t tail = 0;
    std::memcpy(&tail, bytes.data() + i, bytes.size() - i);
    h = (h ^ tail) * 0x94D049BB133111EBull;
    return h ^ (h >> 29);
}

bool same_bytes(EncodedBytes a, EncodedBytes b) noexcept {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

const char* kind_word(std::uint32_t kind) noexcept {
    switch (static_cast<ContainerKind>(kind)) {
        case ContainerKind::dict: return "dict";
        case ContainerKind::list: return "list";
        case ContainerKind::namespace_object: return "Namespace";
    }
    return "container";
}

/// Where a key is in a dict's index, or where it would go.
struct Probe {
    bool found = false;
    std::size_t position = not_found;  // the key's index slot, or the slot a new key takes
    std::uint32_t entry = 0;            // the key's entry number + 1
};

Probe probe(const ManagerHeap& heap, const DictView& dict, EncodedBytes key, std::uint64_t hash) {
    const auto mask = dict.index.size() - 1;
    std::size_t first_deleted = not_found;
    auto position = static_cast<std::size_t>(hash) & mask;
    for (std::size_t probes = 0; probes < dict.index.size(); ++probes, position = (position + 1) & mask) {
        const auto slot = dict.index[position];
        if (slot == 0) return {false, first_deleted != not_found ? first_deleted : position, 0};
        if (slot == heap::index_deleted) {
            if (first_deleted == not_found) first_deleted = position;
            continue;
        }
        const auto& entry = dict.entry_of(heap, slot);
        if (entry.hash == hash && entry.key != 0 && same_bytes(heap.payload(entry.key), key)) return {true, position, slot};
    }
    if (first_deleted == not_found) heap.corrupt("a dict index has no free slot");
    return {false, first_deleted, 0};
}

/// Places entry `slot` (number + 1) with `hash` in a new table's index.
void place(DictView& dict, std::uint64_t hash, std::uint32_t slot) noexcept {
    const auto mask = dict.index.size() - 1;
    auto position = static_cast<std::size_t>(hash) & mask;
    while (dict.index[position] != 0) position = (position + 1) & mask;
    dict.index[position] = slot;
}

}  // namespace

std::vector<std::byte>& scratch_key() noexcept {
    static thread_local std::vector<std::byte> buffer;
    buffer.clear();
    return buffer;
}

std::vector<std::byte>& scratch_value() noexcept {
    static thread_local std::vector<std::byte> buffer;
    buffer.clear();
    return buffer;
}

// --- ContainerRef ---------------------------------------------------------------------------

void ContainerRef::save(codec::Writer& writer) const {
    if (!heap) throw ValueError("encode a proxy: it refers to no manager (default-constructed or moved from)");
    writer.write_string(heap->name());
    writer.write(&index, sizeof index);
}

ContainerRef ContainerRef::load(codec::Reader& reader, ContainerKind kind, std::uint64_t key_tag, std::uint64_t value_tag) {
    ContainerRef ref;
    const auto name = reader.read_string();
    reader.read(&ref.index, sizeof ref.index);
    ref.heap = ManagerHeap::open(name);
    // A proxy inside a value (a dict of lists) is loaded while its heap is held for the outer call.
    const bool lock_here = !ref.heap->held_by_this_thread();
    if (lock_here) ref.heap->lock();
    try {
        const auto& slot = ref.heap->container(ref.index);
        if (slot.kind != static_cast<std::uint32_t>(kind))
            throw CodecError("load a " + std::string(kind_word(static_cast<std::uint32_t>(kind))) + " proxy: " +
                             ref.describe() + " is a " + kind_word(slot.kind));
        if (slot.key_tag != key_tag || slot.value_tag != value_tag)
            throw CodecError("load a " + std::string(kind_word(slot.kind)) + " proxy: " + ref.describe() +
                             " holds other types than the proxy's");
    } catch (...) {
        if (lock_here) ref.heap->roll_back_and_unlock();
        throw;
    }
    if (lock_here) ref.heap->commit_and_unlock();
    return ref;
}

std::string ContainerRef::describe() const {
    return "container " + std::to_string(index) + " of " + (heap ? heap->describe() : std::string("no manager"));
}

ContainerRef create_container(const std::shared_ptr<ManagerHeap>& heap, ContainerKind kind, std::uint64_t key_tag,
                              std::uint64_t value_tag) {
    heap->lock();
    try {
        std::uint64_t root = 0;
        if (kind == ContainerKind::list) (void)ListView::make(*heap, heap::min_list_capacity, root);
        else (void)DictView::make(*heap, heap::min_dict_capacity, root);
        const auto index = heap->add_container(kind, key_tag, value_tag, root);
        heap->commit_and_unlock();
        return {heap, index};
    } catch (...) {
        heap->roll_back_and_unlock();
        throw;
    }
}

// --- ContainerCall ---------------------------------------------------------------------------

ContainerCall::ContainerCall(const ContainerRef& ref, Changes changes)
    : heap_(*ref.heap), index_(ref.index), uncaught_(std::uncaught_exceptions()) {
    heap_.lock(changes == Changes::several);
    try {
        (void)heap_.container(index_);
    } catch (...) {
        heap_.roll_back_and_unlock();
        throw;
    }
}

ContainerCall::~ContainerCall() {
    if (std::uncaught_exceptions() > uncaught_) heap_.roll_back_and_unlock();
    else heap_.commit_and_unlock();
}

std::string ContainerCall::describe() const {
    return std::string(kind_word(heap_.container(index_).kind)) + " " + std::to_string(index_) + " of " + heap_.describe();
}

namespace {

DictView dict_of(const ManagerHeap& heap, std::uint32_t index) {
    const auto& slot = heap.container(index);
    if (slot.kind == static_cast<std::uint32_t>(ContainerKind::list)) heap.corrupt("a dict proxy names a list");
    return DictView::of(heap, slot.root);
}

ListView list_of(const ManagerHeap& heap, std::uint32_t index) {
    const auto& slot = heap.container(index);
    if (slot.kind != static_cast<std::uint32_t>(ContainerKind::list)) heap.corrupt("a list proxy names a dict");
    return ListView::of(heap, slot.root);
}

/// The dict's entries moved to a new table with room for one more (twice as large unless erased
/// entries make room), committed by one store of the root.
DictView grow(ManagerHeap& heap, std::uint32_t index, const DictView& old) {
    auto& slot = heap.container(index);
    const auto live = old.table->live;
    const auto capacity = live + 1 > old.table->capacity / 2 ? old.table->capacity * 2 : old.table->capacity;
    if (capacity > (std::uint64_t{1} << 30)) throw MemoryError(heap.describe() + ": a dict may hold 2^30 keys at most");
    std::uint64_t block = 0;
    auto dict = DictView::make(heap, capacity, block);
    std::uint64_t used = 0;
    for (std::uint64_t e = 0; e < old.table->used; ++e) {
        const auto& entry = old.entries[e];
        if (entry.key == 0) continue;
        dict.entries[used] = entry;
        place(dict, entry.hash, static_cast<std::uint32_t>(++used));
    }
    dict.table->used = used;
    dict.table->live = used;
    const auto old_root = slot.root;
    heap.release_later(old_root);
    heap.commit_store(slot.root, block);
    return dict;
}

/// A list table with `capacity` and the items `pick(i)` for i below `size`, committed as the list.
template <class Pick>
void replace_list(ManagerHeap& heap, std::uint32_t index, std::uint64_t size, Pick&& pick) {
    auto& slot = heap.container(index);
    const auto capacity = std::max<std::uint64_t>(heap::min_list_capacity, std::bit_ceil(size));
    if (capacity > (std::uint64_t{1} << 30)) throw MemoryError(heap.describe() + ": a list may hold 2^30 items at most");
    std::uint64_t block = 0;
    auto list = ListView::make(heap, capacity, block);
    for (std::uint64_t i = 0; i < size; ++i) list.items[i] = pick(i);
    list.table->size = size;
    heap.release_later(slot.root);
    heap.commit_store(slot.root, block);
}

}  // namespace

std::size_t ContainerCall::dict_size() const { return static_cast<std::size_t>(dict_of(heap_, index_).table->live); }

std::optional<EncodedBytes> ContainerCall::dict_find(EncodedBytes key) const {
    const auto dict = dict_of(heap_, index_);
    const auto found = probe(heap_, dict, key, hash_bytes(key));
    if (!found.found) return std::nullopt;
    return heap_.payload(dict.entry_of(heap_, found.entry).value);
}

bool ContainerCall::dict_set(EncodedBytes key, EncodedBytes value) {
    auto dict = dict_of(heap_, index_);
    const auto hash = hash_bytes(key);
    auto found = probe(heap_, dict, key, hash);
    if (found.found) {
        auto& entry = dict.entry_of(heap_, found.entry);
        const auto block = heap_.allocate_copy(value);
        heap_.release_later(entry.value);
        heap_.commit_store(entry.value, block);
        return false;
    }
    if (dict.table->used == dict.table->capacity) {
        dict = grow(heap_, index_, dict);
        found = probe(heap_, dict, key, hash);
    }
    const auto used = dict.table->used;
    const auto key_block = heap_.allocate_copy(key);
    const auto value_block = heap_.allocate_copy(value);
    dict.entries[used] = {hash, key_block, value_block};  // past `used`: no reader looks yet
    heap_.store32(dict.index[found.position], static_cast<std::uint32_t>(used + 1));
    heap_.store(dict.table->used, used + 1);
    heap_.store(dict.table->live, dict.table->live + 1);
    return true;
}

bool ContainerCall::dict_erase(EncodedBytes key) {
    const auto dict = dict_of(heap_, index_);
    const auto found = probe(heap_, dict, key, hash_bytes(key));
    if (!found.found) return false;
    auto& entry = dict.entry_of(heap_, found.entry);
    const auto key_block = entry.key;
    const auto value_block = entry.value;
    heap_.store32(dict.index[found.position], heap::index_deleted);
    heap_.store(entry.key, 0);
    heap_.store(dict.table->live, dict.table->live - 1);
    if (found.entry == dict.table->used) heap_.store(dict.table->used, dict.table->used - 1);
    heap_.release_later(key_block);
    heap_.release_later(value_block);
    return true;
}

std::optional<std::pair<EncodedBytes, EncodedBytes>> ContainerCall::dict_last() const {
    const auto dict = dict_of(heap_, index_);
    for (auto e = dict.table->used; e-- > 0;) {
        const auto& entry = dict.entries[e];
        if (entry.key != 0) return std::pair{EncodedBytes(heap_.payload(entry.key)), EncodedBytes(heap_.payload(entry.value))};
    }
    return std::nullopt;
}

void ContainerCall::dict_for_each(const std::function<void(EncodedBytes, EncodedBytes)>& visit) const {
    const auto dict = dict_of(heap_, index_);
    for (std::uint64_t e = 0; e < dict.table->used; ++e) {
        const auto& entry = dict.entries[e];
        if (entry.key != 0) visit(heap_.payload(entry.key), heap_.payload(entry.value));
    }
}

void ContainerCall::dict_clear() {
    const auto old = dict_of(heap_, index_);
    auto& slot = heap_.container(index_);
    std::uint64_t block = 0;
    (void)DictView::make(heap_, heap::min_dict_capacity, block);
    for (std::uint64_t e = 0; e < old.table->used; ++e) {
        const auto& entry = old.entries[e];
        if (entry.key == 0) continue;
        heap_.release_later(entry.key);
        heap_.release_later(entry.value);
    }
    heap_.release_later(slot.root);
    heap_.commit_store(slot.root, block);
}

void ContainerCall::dict_update(const std::vector<std::pair<EncodedBytes, EncodedBytes>>& pairs) {
    if (pairs.size() <= heap::journaled_update_pairs) {
        for (const auto& [key, value] : pairs) dict_set(key, value);
        return;
    }
    const auto old = dict_of(heap_, index_);
    auto& slot = heap_.container(index_);
    const auto capacity = std::max<std::uint64_t>(heap::min_dict_capacity, std::bit_ceil(old.table->live + pairs.size()));
    if (capacity > (std::uint64_t{1} << 30)) throw MemoryError(heap_.describe() + ": a dict may hold 2^30 keys at most");
    std::uint64_t block = 0;
    auto dict = DictView::make(heap_, capacity, block);
    std::uint64_t used = 0;
    const auto append = [&](const heap::DictEntry& entry) {
        dict.entries[used] = entry;
        place(dict, entry.hash, static_cast<std::uint32_t>(++used));
        dict.table->used = used;
    };
    for (std::uint64_t e = 0; e < old.table->used; ++e)
        if (old.entries[e].key != 0) append(old.entries[e]);
    // The new table is no one's yet: it is filled with plain stores.
    for (const auto& [key, value] : pairs) {
        const auto hash = hash_bytes(key);
        const auto found = probe(heap_, dict, key, hash);
        const auto value_block = heap_.allocate_copy(value);
        if (found.found) {
            auto& entry = dict.entry_of(heap_, found.entry);
            heap_.release_later(entry.value);
            entry.value = value_block;
        } else {
            append({hash, heap_.allocate_copy(key), value_block});
        }
    }
    dict.table->live = used;
    heap_.release_later(slot.root);
    heap_.commit_store(slot.root, block);
}

std::size_t ContainerCall::list_size() const { return static_cast<std::size_t>(list_of(heap_, index_).table->size); }

EncodedBytes ContainerCall::list_at(std::size_t index) const {
    const auto list = list_of(heap_, index_);
    if (index >= list.table->size) throw IndexError(describe() + ": index " + std::to_string(index) + " out of range");
    return heap_.payload(list.items[index]);
}

void ContainerCall::list_set(std::size_t index, EncodedBytes item) {
    const auto list = list_of(heap_, index_);
    if (index >= list.table->size) throw IndexError(describe() + ": index " + std::to_string(index) + " out of range");
    const auto block = heap_.allocate_copy(item);
    heap_.release_later(list.items[index]);
    heap_.commit_store(list.items[index], block);
}

void ContainerCall::list_insert(std::size_t index, EncodedBytes item) {
    const auto list = list_of(heap_, index_);
    const auto size = list.table->size;
    if (index > size) throw IndexError(describe() + ": insert at " + std::to_string(index) + " past its end");
    const auto block = heap_.allocate_copy(item);
    if (index == size && size < list.table->capacity) {
        list.items[size] = block;  // past `size`: no reader looks yet
        heap_.commit_store(list.table->size, size + 1);
        return;
    }
    const auto old_items = list.items;
    replace_list(heap_, index_, size + 1, [&](std::uint64_t i) {
        return i < index ? old_items[i] : i == index ? block : old_items[i - 1];
    });
}

void ContainerCall::list_append(EncodedBytes item) { list_insert(list_of(heap_, index_).table->size, item); }

void ContainerCall::list_erase(std::size_t index) {
    const auto list = list_of(heap_, index_);
    const auto size = list.table->size;
    if (index >= size) throw IndexError(describe() + ": index " + std::to_string(index) + " out of range");
    heap_.release_later(list.items[index]);
    if (index + 1 == size) {
        heap_.commit_store(list.table->size, size - 1);
    } else {
        const auto old_items = list.items;
        replace_list(heap_, index_, size - 1, [&](std::uint64_t i) { return i < index ? old_items[i] : old_items[i + 1]; });
    }
}

void ContainerCall::list_extend(const std::vector<EncodedBytes>& items) {
    const auto list = list_of(heap_, index_);
    const auto size = list.table->size;
    std::vector<std::uint64_t> blocks;
    blocks.reserve(items.size());
    for (const auto& item : items) blocks.push_back(heap_.allocate_copy(item));
    if (size + blocks.size() <= list.table->capacity) {
        std::copy(blocks.begin(), blocks.end(), list.items.begin() + static_cast<std::ptrdiff_t>(size));
        heap_.commit_store(list.table->size, size + blocks.size());
        return;
    }
    const auto old_items = list.items;
    replace_list(heap_, index_, size + blocks.size(), [&](std::uint64_t i) { return i < size ? old_items[i] : blocks[i - size]; });
}

void ContainerCall::list_assign(const std::vector<EncodedBytes>& items) {
    const auto list = list_of(heap_, index_);
    std::vector<std::uint64_t> blocks;
    blocks.reserve(items.size());
    for (const auto& item : items) blocks.push_back(heap_.allocate_copy(item));
    for (std::uint64_t i = 0; i < list.table->size; ++i) heap_.release_later(list.items[i]);
    replace_list(heap_, index_, blocks.size(), [&](std::uint64_t i) { return blocks[i]; });
}

void ContainerCall::list_permute(const std::vector<std::size_t>& order) {
    const auto list = list_of(heap_, index_);
    const auto size = list.table->size;
    if (order.size() != size) throw ValueError(describe() + ": a new order of " + std::to_string(order.size()) +
                                               " items for " + std::to_string(size));
    std::vector<bool> taken(order.size(), false);
    for (const auto i : order) {
        if (i >= size || taken[i]) throw ValueError(describe() + ": a new order that is no permutation");
        taken[i] = true;
    }
    const auto old_items = list.items;
    replace_list(heap_, index_, size, [&](std::uint64_t i) { return old_items[order[i]]; });
}

}  // namespace ipc::detail
