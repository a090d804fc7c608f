// ipc/detail/type_name.hpp — a compile-time name and 64-bit tag for every C++ type.
// The tag marks each encoded message, so a receiver that asks for another type gets an error, not garbage.
#pragma once

#include <cstdint>
#include <string_view>

namespace ipc::detail {

/// The template argument that GCC and Clang spell inside a function's __PRETTY_FUNCTION__ after
/// `marker` ("T = "), cut out at compile time so that the name (and a tag hashed from it) costs
/// nothing at run time.
constexpr std::string_view template_argument(std::string_view pretty, std::string_view marker) noexcept {
    const auto begin = pretty.find(marker) + marker.size();
    // The argument itself may hold ';' or ']' (array types), so cut at the end of the whole list:
    // GCC follows it with "; std::string_view = …]", Clang ends with "]".
    const auto gcc_tail = pretty.rfind("; std::string_view");
    const auto end = gcc_tail != std::string_view::npos && gcc_tail > begin ? gcc_tail : pretty.rfind(']');
    return pretty.substr(begin, end - begin);
}

template <class T>
constexpr std::string_view type_name() noexcept {
    constexpr auto name = template_argument(__PRETTY_FUNCTION__, "T = ");
    return name;
}

/// FNV-1a: stable across processes and runs, and cheap enough to evaluate at compile time.
constexpr std::uint64_t fnv1a(std::string_view text) noexcept {
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    for (char c : text) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

template <class T>
inline constexpr std::uint64_t type_tag = fnv1a(type_name<T>());

}  // namespace ipc::detail
