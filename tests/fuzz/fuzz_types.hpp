// tests/fuzz/fuzz_types.hpp — the types fuzz_codec decodes (its first input byte picks one), shared
// with the seed writer, which encodes a sample of each.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "ipc/codec.hpp"

namespace ipc::fuzz {

/// A plain struct, sent as its bytes. No padding (its bytes are all value, so a round trip compares
/// equal byte for byte) and no bool (the codec cannot check a bool inside a struct).
struct RawRecord {
    std::int32_t id;
    std::int16_t kind;
    char code[2];
    double weight;
    bool operator==(const RawRecord&) const = default;
};
static_assert(sizeof(RawRecord) == 16 && ipc::codec::Raw<RawRecord>);

enum class Shade : std::uint8_t { light, dark };

using CodecTypes = std::tuple<
    std::int8_t, std::uint16_t, std::int32_t, std::uint64_t, double, bool, Shade,
    std::string, std::vector<int>, std::vector<bool>, std::vector<char>, std::vector<std::byte>,
    std::optional<int>, std::optional<std::string>,
    std::map<std::string, int>, std::unordered_map<int, std::string>, std::set<std::int64_t>,
    std::tuple<int, std::string, double>, std::pair<std::string, std::vector<int>>,
    std::deque<std::int16_t>, std::vector<std::deque<std::int16_t>>,
    std::array<std::byte, 64>, std::array<bool, 4>, RawRecord, std::vector<RawRecord>, std::vector<std::array<bool, 3>>,
    std::vector<std::string>, std::vector<std::vector<std::string>>, std::list<std::optional<std::string>>,
    std::variant<int, std::string, std::vector<double>>, std::map<int, std::vector<std::pair<std::string, int>>>,
    std::chrono::milliseconds>;

/// The type tag of the type at `index` in CodecTypes.
inline std::uint64_t tag_of(std::size_t index) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
        std::uint64_t tag = 0;
        ((index == I ? (tag = ipc::codec::registered_tag<std::tuple_element_t<I, CodecTypes>>()) : 0), ...);
        return tag;
    }(std::make_index_sequence<std::tuple_size_v<CodecTypes>>());
}

}  // namespace ipc::fuzz
