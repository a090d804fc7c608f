// shm/shareable_list.cpp — the string slots of ShareableList<std::string>: their layout, made once
// and checked on every attach, and each item's length checked against its slot on every read.
#include "ipc/shared_memory.hpp"

#include <atomic>
#include <cstring>

#include "ipc/error.hpp"

namespace ipc::detail {

namespace {

constexpr std::size_t word = sizeof(std::uint64_t);
// Python's rule: room for the item and at least one more byte, in steps of 8.
constexpr std::size_t slot_alignment = 8;

ElementType string_type() noexcept { return {type_tag<std::string>, sizeof(char), "std::string"}; }

std::string what(const Segment& segment) { return "ShareableList '" + segment.name() + "'"; }

}  // namespace

StringSlots::StringSlots(const std::string& name, std::span<const std::string> values) {
    std::vector<std::uint64_t> capacities;
    std::size_t data_size = 0;
    for (const auto& value : values) {
        capacities.push_back(slot_alignment * (value.size() / slot_alignment + 1));
        data_size += capacities.back();
    }
    const std::size_t count = values.size();
    segment_ = Segment::create(name, Kind::shareable_list, string_type(), word * (1 + 2 * count) + data_size,
                               [&](std::span<std::byte> payload) {
                                   auto* words = reinterpret_cast<std::uint64_t*>(payload.data());
                                   words[0] = count;
                                   if (count != 0) std::memcpy(words + 1, capacities.data(), count * word);
                                   std::byte* data = payload.data() + word * (1 + 2 * count);
                                   for (std::size_t i = 0; i < count; ++i) {
                                       words[1 + count + i] = values[i].size();
                                       if (!values[i].empty()) std::memcpy(data, values[i].data(), values[i].size());
                                       data += capacities[i];
                                   }
                               });
    check_layout();
}

StringSlots::StringSlots(const std::string& name) : segment_(Segment::open(name, Kind::shareable_list, string_type())) {
    check_layout();
}

void StringSlots::check_layout() {
    const auto payload = segment_->payload();
    const auto corrupt = [&](const std::string& problem) {
        return CorruptSegmentError(what(*segment_) + ": " + problem + " (corrupt, or not made by ipc)");
    };
    if (payload.size() < word)
        throw corrupt("its payload of " + std::to_string(payload.size()) + " bytes cannot hold the item count");
    const auto* words = reinterpret_cast<const std::uint64_t*>(payload.data());
    // Compared by division: a count written over with a huge value must not wrap the product round.
    const std::uint64_t count = words[0];
    if (count > (payload.size() - word) / (2 * word))
        throw corrupt("it claims " + std::to_string(count) + " items, more than its " +
                      std::to_string(payload.size()) + " bytes can describe");
    const std::size_t data_offset = word * (1 + 2 * count);
    const std::size_t data_size = payload.size() - data_offset;
    offsets_.assign(1, 0);
    offsets_.reserve(count + 1);
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint64_t capacity = words[1 + i];
        if (capacity > data_size - offsets_.back())
            throw corrupt("slot " + std::to_string(i) + " claims " + std::to_string(capacity) +
                          " bytes, beyond the " + std::to_string(data_size) + " bytes of all slots");
        offsets_.push_back(offsets_.back() + capacity);
    }
    lengths_ = segment_->at<std::uint64_t>(word * (1 + count));
    data_ = payload.data() + data_offset;
}

std::string StringSlots::load(std::size_t index) const {
    const std::uint64_t length = std::atomic_ref<std::uint64_t>(lengths_[index]).load(std::memory_order_acquire);
    if (length > capacity(index))
        throw CorruptSegmentError(what(*segment_) + ": item " + std::to_string(index) + " claims a length of " +
                                  std::to_string(length) + " bytes, beyond its slot's capacity of " +
                                  std::to_string(capacity(index)) + " (shared memory written over)");
    return {reinterpret_cast<const char*>(data_ + offsets_[index]), static_cast<std::size_t>(length)};
}

void StringSlots::store(std::size_t index, std::string_view value) const {
    if (value.size() > capacity(index))
        throw ValueError(what(*segment_) + ": item " + std::to_string(index) + " of " + std::to_string(value.size()) +
                         " bytes does not fit its slot's capacity of " + std::to_string(capacity(index)) +
                         " bytes (fixed when the list was created)");
    if (!value.empty()) std::memcpy(data_ + offsets_[index], value.data(), value.size());
    std::atomic_ref<std::uint64_t>(lengths_[index]).store(value.size(), std::memory_order_release);
}

}  // namespace ipc::detail
