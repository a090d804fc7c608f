// ipc/detail/padding.hpp — finds the padding of a trivially copyable type and zeroes it, so that a
// value sent as raw bytes (or stored in shared memory) never carries what the sender's memory held.
#pragma once

#include <array>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

#if defined(__has_builtin)
#if __has_builtin(__builtin_clear_padding)
#define IPC_DETAIL_HAS_CLEAR_PADDING 1
#endif
#endif

namespace ipc::codec {

/// True when this compiler can say which bytes of a struct are padding (GCC 11 and later): raw
/// values then travel with their padding zeroed. Clang (up to at least 18) cannot, and there a raw
/// struct with padding travels as it lies in memory; give such a type cereal functions, or make
/// its padding explicit members, when that matters.
#ifdef IPC_DETAIL_HAS_CLEAR_PADDING
inline constexpr bool clears_padding = true;
#else
inline constexpr bool clears_padding = false;
#endif

}  // namespace ipc::codec

namespace ipc::detail {

template <class T>
struct IsPaddingFree : std::bool_constant<std::has_unique_object_representations_v<T> ||
                                          std::is_same_v<std::remove_cv_t<T>, float> ||
                                          std::is_same_v<std::remove_cv_t<T>, double>> {};
template <class E, std::size_t N>
struct IsPaddingFree<std::array<E, N>> : IsPaddingFree<E> {};

/// Types known at compile time to have no padding: every byte is a value byte (integers, float,
/// double, and arrays and padding-free structs of them). long double has padding on x86-64.
template <class T>
inline constexpr bool padding_free_v = IsPaddingFree<std::remove_cv_t<T>>::value;

/// Which bits of a T hold its value: found once, at first use, by asking the compiler to clear
/// the padding of a T whose every bit is set.
template <class T>
class PaddingMask {
public:
    static const PaddingMask& of() {
        static const PaddingMask mask;
        return mask;
    }
    [[nodiscard]] bool any() const noexcept { return any_; }
    /// Zeroes the padding of the `count` T's laid out from `bytes` (any alignment).
    void clear(std::byte* bytes, std::size_t count) const noexcept {
        for (std::size_t element = 0; element < count; ++element, bytes += sizeof(T))
            for (std::size_t i = 0; i < sizeof(T); ++i) bytes[i] &= value_bits_[i];
    }

private:
    PaddingMask() noexcept {
        value_bits_.fill(std::byte{0xFF});
#ifdef IPC_DETAIL_HAS_CLEAR_PADDING
        alignas(T) std::byte probe[sizeof(T)];
        std::memset(probe, 0xFF, sizeof probe);
        __builtin_clear_padding(reinterpret_cast<T*>(probe));
        std::memcpy(value_bits_.data(), probe, sizeof probe);
#endif
        for (const auto bits : value_bits_) any_ = any_ || bits != std::byte{0xFF};
    }
    std::array<std::byte, sizeof(T)> value_bits_{};
    bool any_ = false;
};

/// True when a T has padding this compiler can find (false for the padding-free types without a
/// look at run time).
template <class T>
[[nodiscard]] bool has_padding() noexcept {
    if constexpr (padding_free_v<T> || !codec::clears_padding) return false;
    else return PaddingMask<std::remove_cv_t<T>>::of().any();
}

/// Zeroes the padding of the `count` T's laid out from `bytes`: a copy of them about to leave.
template <class T>
void clear_padding(std::byte* bytes, std::size_t count) noexcept {
    if (has_padding<T>()) PaddingMask<std::remove_cv_t<T>>::of().clear(bytes, count);
}

/// The bytes of a T, padding zeroed: copy them out with memcpy (a copy of a T may copy its padding
/// from anywhere).
template <class T>
struct ClearedBytes {
    alignas(T) std::byte bytes[sizeof(T)];
    /// The T these bytes hold (trivially copyable, so the copy into them made it).
    [[nodiscard]] const T& value() const noexcept { return *std::launder(reinterpret_cast<const T*>(bytes)); }
    [[nodiscard]] T& value() noexcept { return *std::launder(reinterpret_cast<T*>(bytes)); }
};

template <class T>
[[nodiscard]] ClearedBytes<T> without_padding(const T& value) noexcept {
    ClearedBytes<T> cleared;
    std::memcpy(cleared.bytes, std::addressof(value), sizeof(T));
    clear_padding<T>(cleared.bytes, 1);
    return cleared;
}

}  // namespace ipc::detail
