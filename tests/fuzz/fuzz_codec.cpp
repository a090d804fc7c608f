// tests/fuzz/fuzz_codec.cpp — libFuzzer target for ipc::decode, what a receiver runs on bytes another
// process wrote. The first byte picks a type; the rest is the message (with the type's own tag put
// in front, unless the byte's top bit says the input carries a tag of its own). A decode may fail
// only with an ipc::Error; what decodes must encode and decode again to the same bytes; and where a
// channel decodes in place from its ring (codec::decode_flat), that must agree with decode().
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "fuzz_support.hpp"
#include "fuzz_types.hpp"
#include "ipc/codec.hpp"
#include "ipc/error.hpp"

namespace {

using Bytes = std::vector<std::byte>;

/// A ring large enough for any input libFuzzer makes here (-max_len 4096), to build RecordViews on.
ipc::fuzz::MemoryRing& view_ring() {
    static ipc::fuzz::MemoryRing ring(8192);
    return ring;
}

/// decode_flat over the message placed in a ring at `offset`, as Queue::get and Connection::recv
/// call it on a record: nullopt when it declines.
template <class T>
std::optional<T> decode_in_place(std::span<const std::byte> message, std::uint64_t offset) {
    auto& memory = view_ring();
    const ipc::detail::Ring ring(memory.reset(), "fuzz ring");
    ipc::detail::copy_in(ring, offset, message.data(), message.size());
    const ipc::detail::RecordView view{ring, offset, message.size()};
    T value;
    if (!ipc::codec::decode_flat(view, value)) return std::nullopt;
    return value;
}

template <class T>
void check(std::span<const std::byte> message, std::uint64_t offset) {
    std::optional<T> decoded;
    try {
        decoded = ipc::decode<T>(message);
    } catch (const ipc::Error&) {
    }
    if (decoded) {
        // What decoded is a value: its encoding decodes again, to a value that encodes the same, or
        // (an unordered container may list its elements in another order) that compares equal.
        const Bytes encoded = ipc::encode(*decoded);
        const T back = ipc::decode<T>(encoded);
        if (ipc::encode(back) != encoded) {
            if constexpr (std::equality_comparable<T>) {
                if (!(back == *decoded)) __builtin_trap();
            } else {
                __builtin_trap();
            }
        }
    }
    if constexpr (ipc::codec::DecodableInPlace<T>) {
        if (message.size() > view_ring().capacity()) return;
        const auto in_place = decode_in_place<T>(message, offset);
        if (in_place.has_value() != decoded.has_value()) __builtin_trap();
        if (in_place && ipc::encode(*in_place) != ipc::encode(*decoded)) __builtin_trap();
    }
}

template <std::size_t... I>
void check_type(std::size_t index, std::span<const std::byte> message, std::uint64_t offset, std::index_sequence<I...>) {
    ((index == I ? check<std::tuple_element_t<I, ipc::fuzz::CodecTypes>>(message, offset) : void()), ...);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    constexpr std::size_t types = std::tuple_size_v<ipc::fuzz::CodecTypes>;
    const std::size_t index = (data[0] & 0x7f) % types;
    const bool own_tag = (data[0] & 0x80) != 0;
    const auto rest = std::as_bytes(std::span(data + 1, size - 1));
    Bytes message;
    if (!own_tag) {
        const std::uint64_t tag = ipc::fuzz::tag_of(index);
        message.resize(sizeof tag);
        std::memcpy(message.data(), &tag, sizeof tag);
    }
    message.insert(message.end(), rest.begin(), rest.end());
    // Where the record sits in the ring: the message wraps round the ring's end for some inputs, so
    // decode_flat's copy path is checked as well as its in-place one.
    const std::uint64_t offset = (size * 2654435761u) % view_ring().capacity();
    check_type(index, message, offset, std::make_index_sequence<types>());
    return 0;
}
