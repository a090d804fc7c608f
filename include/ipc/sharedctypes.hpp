// ipc/sharedctypes.hpp — Python's Value, Array, RawValue and RawArray: typed data in shared memory,
// with a recursive lock (get_lock()) unless Raw, and atomic operations for arithmetic types.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ipc/detail/codec_stream.hpp"
#include "ipc/detail/padding.hpp"
#include "ipc/detail/segment.hpp"
#include "ipc/error.hpp"
#include "ipc/synchronize.hpp"

namespace ipc {

namespace detail {

/// Where a Value's or Array's elements start: after the lock, aligned for T.
template <class T>
inline constexpr std::size_t data_offset = std::max<std::size_t>(sizeof(LockWord), alignof(T));

/// Swaps `value` (padding zeroed) into a lock-free shared element and returns what it held.
template <class T>
T exchange_element(T& element, const T& value) noexcept {
    if (!has_padding<T>()) return std::atomic_ref<T>(element).exchange(value);
    auto desired = without_padding(value);
    ClearedBytes<T> previous;
    __atomic_exchange(std::addressof(element), &desired.value(), &previous.value(), __ATOMIC_SEQ_CST);
    return previous.value();
}

/// compare_exchange on a lock-free shared element that compares values, not padding: the stored
/// padding is always zero, so `expected` and `desired` are compared and stored with theirs zeroed.
template <class T>
bool compare_exchange_element(T& element, T& expected, const T& desired_value) noexcept {
    if (!has_padding<T>()) return std::atomic_ref<T>(element).compare_exchange_strong(expected, desired_value);
    auto current = without_padding(expected);
    auto desired = without_padding(desired_value);
    const bool swapped = __atomic_compare_exchange(std::addressof(element), &current.value(), &desired.value(), false,
                                                   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    std::memcpy(std::addressof(expected), current.bytes, sizeof(T));
    return swapped;
}

/// The typed segment behind Value, RawValue, Array and RawArray.
template <class T, bool Locked>
class Elements {
public:
    static constexpr Kind kind_for(bool array) {
        return array ? (Locked ? Kind::array : Kind::raw_array) : (Locked ? Kind::value : Kind::raw_value);
    }
    static constexpr std::size_t offset = Locked ? data_offset<T> : 0;

    Elements() = default;
    /// Creates `count` elements, copied from `initial` when it is not empty (else zeroed).
    Elements(const std::string& name, bool array, std::size_t count, std::span<const T> initial)
        : segment_(Segment::create(name, kind_for(array), ElementType::of<T>(), offset + count * sizeof(T),
                                   [&](std::span<std::byte> payload) {
                                       if constexpr (Locked) new (payload.data()) LockWord{};
                                       auto* data = reinterpret_cast<T*>(payload.data() + offset);
                                       std::uninitialized_value_construct_n(data, count);
                                       store_elements(data, initial);
                                   })),
          lock_(make_lock(segment_)) {}
    Elements(const std::string& name, bool array)
        : segment_(Segment::open(name, kind_for(array), ElementType::of<T>())), lock_(make_lock(segment_)) {}

    [[nodiscard]] T* data() const noexcept { return segment_->at<T>(offset); }
    [[nodiscard]] std::size_t size() const noexcept { return (segment_->payload().size() - offset) / sizeof(T); }
    [[nodiscard]] const std::string& name() const noexcept { return segment_->name(); }
    /// The lock in the segment's first bytes, one handle per Elements: a reference to it lives as
    /// long as this handle, so `std::lock_guard guard(value.get_lock());` works.
    [[nodiscard]] RLock& lock() const
        requires Locked
    {
        return *lock_;
    }
    void unlink() { segment_->unlink(); }

    void save(codec::Writer& writer) const { writer.write_string(segment_->name()); }
    static Elements load(codec::Reader& reader, bool array) { return Elements(reader.read_string(), array); }

private:
    static std::optional<RLock> make_lock(const std::shared_ptr<Segment>& segment) {
        if constexpr (Locked) return HandleAccess::make<RLock>(SharedObject(segment, 0));
        return std::nullopt;
    }

    std::shared_ptr<Segment> segment_;
    mutable std::optional<RLock> lock_;  // mutable: locking a const Value is what get_lock() is for
};

}  // namespace detail

/// One T in shared memory. With `Locked` (Value) value() and set() take its RLock, as Python's do;
/// hold get_lock() around a read-modify-write (`v = v.value() + 1`), or use the atomic operations.
template <class T, bool Locked>
class BasicValue {
    static_assert(detail::SharedElement<T>, "Value<T> needs a trivially copyable T without pointers");

public:
    /// A zero-initialised value with a generated name.
    BasicValue() : elements_("", false, 1, {}) {}
    explicit BasicValue(const T& initial) : elements_("", false, 1, std::span<const T>(&initial, 1)) {}
    static BasicValue create(const std::string& name, const T& initial = T{}) {
        return BasicValue(detail::Elements<T, Locked>(name, false, 1, std::span<const T>(&initial, 1)));
    }
    static BasicValue open(const std::string& name) { return BasicValue(detail::Elements<T, Locked>(name, false)); }

    [[nodiscard]] T value() const {
        if constexpr (Locked) {
            std::lock_guard guard(get_lock());
            return detail::load_element(*elements_.data());
        } else {
            return detail::load_element(*elements_.data());
        }
    }
    void set(const T& value) {
        if constexpr (Locked) {
            std::lock_guard guard(get_lock());
            detail::store_element(*elements_.data(), value);
        } else {
            detail::store_element(*elements_.data(), value);
        }
    }
    BasicValue& operator=(const T& value) {
        set(value);
        return *this;
    }

    /// The recursive lock that value() and set() take (Value only).
    [[nodiscard]] RLock& get_lock() const
        requires Locked
    {
        return elements_.lock();
    }
    /// The shared object itself, unsynchronised (Python's get_obj()).
    [[nodiscard]] T& get_obj() const noexcept { return *elements_.data(); }

    // Lock-free atomic operations: what Python lacks, and faster than the lock.
    T load() const noexcept
        requires detail::lock_free_atomic_v<T>
    {
        return ref().load(std::memory_order_seq_cst);
    }
    void store(T value) noexcept
        requires detail::lock_free_atomic_v<T>
    {
        detail::store_element(*elements_.data(), value, std::memory_order_seq_cst);
    }
    T exchange(T value) noexcept
        requires detail::lock_free_atomic_v<T>
    {
        return detail::exchange_element(*elements_.data(), value);
    }
    /// Compares values, not padding: a struct whose padding differs still matches.
    bool compare_exchange(T& expected, T desired) noexcept
        requires detail::lock_free_atomic_v<T>
    {
        return detail::compare_exchange_element(*elements_.data(), expected, desired);
    }
    T fetch_add(T delta) noexcept
        requires(detail::lock_free_atomic_v<T> && (std::is_integral_v<T> || std::is_floating_point_v<T>))
    {
        return ref().fetch_add(delta);
    }
    T fetch_sub(T delta) noexcept
        requires(detail::lock_free_atomic_v<T> && (std::is_integral_v<T> || std::is_floating_point_v<T>))
    {
        return ref().fetch_sub(delta);
    }

    [[nodiscard]] const std::string& name() const noexcept { return elements_.name(); }
    /// Removes a named value's name.
    void unlink() { elements_.unlink(); }

    void ipc_save(codec::Writer& writer) const { elements_.save(writer); }
    static BasicValue ipc_load(codec::Reader& reader) { return BasicValue(detail::Elements<T, Locked>::load(reader, false)); }

private:
    explicit BasicValue(detail::Elements<T, Locked> elements) : elements_(std::move(elements)) {}
    std::atomic_ref<T> ref() const noexcept { return std::atomic_ref<T>(*elements_.data()); }

    detail::Elements<T, Locked> elements_;
};

template <class T>
using Value = BasicValue<T, true>;
template <class T>
using RawValue = BasicValue<T, false>;

/// A fixed-size array of T in shared memory. Element access is unsynchronised, as in C; hold
/// get_lock() (Array only) around updates that must not interleave, or use to_vector()/assign().
template <class T, bool Locked>
class BasicArray {
    static_assert(detail::SharedElement<T>, "Array<T> needs a trivially copyable T without pointers");

public:
    /// `size` zero-initialised elements with a generated name.
    explicit BasicArray(std::size_t size) : elements_(make("", size, {})) {}
    BasicArray(std::initializer_list<T> values) : elements_(make("", values.size(), {values.begin(), values.size()})) {}
    template <std::ranges::contiguous_range Range>
        requires std::same_as<std::ranges::range_value_t<Range>, T>
    explicit BasicArray(const Range& values) : elements_(make("", std::ranges::size(values), std::span<const T>(values))) {}

    static BasicArray create(const std::string& name, std::size_t size) { return BasicArray(make(name, size, {})); }
    static BasicArray create(const std::string& name, std::span<const T> values) {
        return BasicArray(make(name, values.size(), values));
    }
    static BasicArray open(const std::string& name) { return BasicArray(detail::Elements<T, Locked>(name, true)); }

    [[nodiscard]] std::size_t size() const noexcept { return elements_.size(); }
    [[nodiscard]] T& operator[](std::size_t index) const noexcept { return elements_.data()[index]; }
    /// Bounds-checked: IndexError outside 0 .. size()-1.
    [[nodiscard]] T& at(std::size_t index) const {
        if (index >= size())
            throw IndexError("Array '" + name() + "': index " + std::to_string(index) + " is out of range (size " +
                             std::to_string(size()) + ")");
        return elements_.data()[index];
    }
    [[nodiscard]] T* begin() const noexcept { return elements_.data(); }
    [[nodiscard]] T* end() const noexcept { return elements_.data() + size(); }
    [[nodiscard]] std::span<T> span() const noexcept { return {elements_.data(), size()}; }

    /// A copy of every element, taken under the lock (Python's arr[:]).
    [[nodiscard]] std::vector<T> to_vector() const {
        auto copy = [this] { return std::vector<T>(begin(), end()); };
        if constexpr (Locked) {
            std::lock_guard guard(get_lock());
            return copy();
        } else {
            return copy();
        }
    }
    /// Overwrites the elements from `values` under the lock; a size mismatch is a ValueError.
    void assign(std::span<const T> values) {
        if (values.size() != size())
            throw ValueError("Array '" + name() + "': cannot assign " + std::to_string(values.size()) + " values to " +
                             std::to_string(size()) + " elements");
        if constexpr (Locked) {
            std::lock_guard guard(get_lock());
            detail::store_elements(begin(), values);
        } else {
            detail::store_elements(begin(), values);
        }
    }

    [[nodiscard]] RLock& get_lock() const
        requires Locked
    {
        return elements_.lock();
    }
    [[nodiscard]] const std::string& name() const noexcept { return elements_.name(); }
    void unlink() { elements_.unlink(); }

    void ipc_save(codec::Writer& writer) const { elements_.save(writer); }
    static BasicArray ipc_load(codec::Reader& reader) { return BasicArray(detail::Elements<T, Locked>::load(reader, true)); }

private:
    static detail::Elements<T, Locked> make(const std::string& name, std::size_t size, std::span<const T> values) {
        if (size == 0) throw ValueError("Array needs at least one element");
        return detail::Elements<T, Locked>(name, true, size, values);
    }
    explicit BasicArray(detail::Elements<T, Locked> elements) : elements_(std::move(elements)) {}

    detail::Elements<T, Locked> elements_;
};

template <class T>
using Array = BasicArray<T, true>;
template <class T>
using RawArray = BasicArray<T, false>;

}  // namespace ipc
