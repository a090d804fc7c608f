// ipc/detail/padding.hpp — finds the padding of a trivially copyable type and zeroes it, so that a
// value sent as raw bytes (or stored in shared memory) never carries what the sender's memory held;
// and the loads and stores of such values in shared memory (Value, Array, ShareableList).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <span>
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

/// True when T can be read and written with lock-free atomic instructions, which work across
/// processes; std::atomic_ref of a larger T would use a lock private to each process.
template <class T>
inline constexpr bool lock_free_atomic_v = std::is_trivially_copyable_v<T> && std::atomic_ref<T>::is_always_lock_free;

/// What may live in shared memory as raw bytes: no pointer (meaningless in another process).
template <class T>
concept SharedElement = std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && !std::is_const_v<T>;

// Atomic stores of a padded T go through the pointer forms of the __atomic builtins: std::atomic_ref
// takes its values by copy, and a copy of a T need not keep the zeroed padding of its source.

/// Stores `value` into a shared element: other processes see it, so never with the padding of the
/// caller's copy.
template <class T>
void store_element(T& element, const T& value, std::memory_order order = std::memory_order_relaxed) noexcept {
    if (has_padding<T>()) {
        auto cleared = without_padding(value);
        if constexpr (lock_free_atomic_v<T>)
            __atomic_store(std::addressof(element), &cleared.value(), static_cast<int>(order));
        else
            std::memcpy(std::addressof(element), cleared.bytes, sizeof(T));
    } else if constexpr (lock_free_atomic_v<T>) {
        std::atomic_ref<T>(element).store(value, order);
    } else {
        element = value;
    }
}

/// Copies `values` into shared elements from `target` on, padding zeroed.
template <class T>
void store_elements(T* target, std::span<const T> values) noexcept {
    if (!has_padding<T>()) {
        std::copy(values.begin(), values.end(), target);
        return;
    }
    for (const T& value : values) std::memcpy(target++, without_padding(value).bytes, sizeof(T));
}

/// Reads a shared element, atomically when T is lock-free (a plain copy otherwise).
template <class T>
T load_element(const T& element, std::memory_order order = std::memory_order_relaxed) noexcept {
    if constexpr (lock_free_atomic_v<T>)
        return std::atomic_ref<T>(const_cast<T&>(element)).load(order);
    else
        return element;
}

}  // namespace ipc::detail
