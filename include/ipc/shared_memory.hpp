// ipc/shared_memory.hpp — Python's shared_memory module: SharedMemory, a block of bytes shared by
// name between processes, related or not, as a std::span<std::byte>; and ShareableList<T>, a
// fixed-length list of T or of std::string in such a block.
#pragma once

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ipc/detail/codec_stream.hpp"
#include "ipc/detail/padding.hpp"
#include "ipc/detail/segment.hpp"
#include "ipc/error.hpp"

namespace ipc {

template <class T>
class ShareableList;

/// A shared block of bytes. Copies share one mapping; passing it to a Process shares the block.
///
/// A block created without a name gets a generated one and is removed when the creating process
/// drops its last handle (or by the resource tracker if that process is killed). A block created
/// with a name persists until unlink(), as POSIX shared memory does.
class SharedMemory {
public:
    /// Creates a block of `size` bytes with a generated name.
    explicit SharedMemory(std::size_t size);
    /// As Python's SharedMemory(name, create, size): with `create`, makes a new block called `name`
    /// (FileExistsError if taken); without, attaches to it (FileNotFoundError if missing).
    explicit SharedMemory(const std::string& name, bool create = false, std::size_t size = 0);

    /// The name other processes attach with (no leading slash).
    [[nodiscard]] const std::string& name() const;
    [[nodiscard]] std::size_t size() const;
    /// The bytes (Python's `buf`); a ValueError after close().
    [[nodiscard]] std::span<std::byte> buf() const;
    /// Unmaps this handle; other handles and processes keep the block.
    void close() noexcept;
    /// Removes the name: nobody can attach any more, and the memory goes when the last mapping does.
    /// Unlinking twice is a FileNotFoundError.
    void unlink();

    void ipc_save(codec::Writer& writer) const;
    static SharedMemory ipc_load(codec::Reader& reader);

private:
    template <class T>
    friend class ShareableList;  // its shm() is a SharedMemory over the list's own segment
    explicit SharedMemory(std::shared_ptr<detail::Segment> segment);
    const detail::Segment& segment() const;

    std::shared_ptr<detail::Segment> segment_;
    std::string name_;
};

namespace detail {

/// The slots of a ShareableList<T>: the T's, one after another from the payload's start.
template <class T>
class TypedSlots {
public:
    /// Creates a list of `values` called `name` (a generated name when empty).
    TypedSlots(const std::string& name, std::span<const T> values)
        : segment_(Segment::create(name, Kind::shareable_list, ElementType::of<T>(), values.size() * sizeof(T),
                                   [&](std::span<std::byte> payload) {
                                       auto* data = reinterpret_cast<T*>(payload.data());
                                       std::uninitialized_value_construct_n(data, values.size());
                                       store_elements(data, values);
                                   })) {}
    explicit TypedSlots(const std::string& name)
        : segment_(Segment::open(name, Kind::shareable_list, ElementType::of<T>())) {}

    // The payload size was checked against this process's mapping on open: the count stays inside it.
    [[nodiscard]] std::size_t size() const noexcept { return segment_->payload().size() / sizeof(T); }
    // Acquire and release: a reader that sees an item also sees what its writer wrote before it.
    [[nodiscard]] T load(std::size_t index) const noexcept {
        return load_element(segment_->at<T>()[index], std::memory_order_acquire);
    }
    void store(std::size_t index, const T& value) const noexcept {
        store_element(segment_->at<T>()[index], value, std::memory_order_release);
    }
    [[nodiscard]] const std::shared_ptr<Segment>& segment() const noexcept { return segment_; }

private:
    std::shared_ptr<Segment> segment_;
};

/// The slots of a ShareableList<std::string>. Payload: the item count (u64), each slot's capacity
/// (u64 each), each item's length (u64 each), then the slots' bytes one after another. The count and
/// the capacities are read and checked once, when this process maps the segment, and kept here, so
/// that what another process writes over later can never move a slot outside the mapping.
class StringSlots {
public:
    /// Creates a list of `values` called `name` (a generated name when empty).
    StringSlots(const std::string& name, std::span<const std::string> values);
    explicit StringSlots(const std::string& name);

    [[nodiscard]] std::size_t size() const noexcept { return offsets_.size() - 1; }
    [[nodiscard]] std::size_t capacity(std::size_t index) const noexcept { return offsets_[index + 1] - offsets_[index]; }
    /// CorruptSegmentError when the stored length exceeds the slot's capacity.
    [[nodiscard]] std::string load(std::size_t index) const;
    /// ValueError when `value` is longer than the slot's capacity.
    void store(std::size_t index, std::string_view value) const;
    [[nodiscard]] const std::shared_ptr<Segment>& segment() const noexcept { return segment_; }

    /// Where item `index`'s length lies in the payload of a list of `count` items (for tests).
    static constexpr std::size_t length_offset(std::size_t count, std::size_t index) noexcept {
        return sizeof(std::uint64_t) * (1 + count + index);
    }

private:
    void check_layout();

    std::shared_ptr<Segment> segment_;
    std::vector<std::size_t> offsets_;  // slot i's bytes are [offsets_[i], offsets_[i + 1]) of the data
    std::uint64_t* lengths_ = nullptr;
    std::byte* data_ = nullptr;
};

template <class T>
using ListSlots = std::conditional_t<std::same_as<T, std::string>, StringSlots, TypedSlots<T>>;

/// A sequence a ShareableList<T> can be made from: of T (for strings, of anything that views as
/// characters); never something that converts to a name, so that ShareableList<char>("x") attaches.
template <class Range, class T>
concept ListSource =
    std::ranges::input_range<const Range> && !std::convertible_to<const Range&, std::string> &&
    (std::same_as<std::remove_cvref_t<std::ranges::range_reference_t<const Range>>, T> ||
     (std::same_as<T, std::string> && std::convertible_to<std::ranges::range_reference_t<const Range>, std::string_view>));

}  // namespace detail

/// Python's ShareableList, typed: a fixed number of T (trivially copyable, no pointers) or of
/// std::string in a shared segment. Copies share one list; passing it to a Process shares it.
///
/// For a T that is lock-free atomic (integers, double, small structs) every read and write of an
/// item is atomic. Larger T's and strings are copied without a lock, as Python does: concurrent
/// writers of one item, or a reader racing a writer, need a Lock of their own.
///
/// A std::string slot's capacity is fixed at creation as Python fixes it: the first item's length
/// rounded up to the next multiple of 8 above it (0 to 7 bytes get 8, 8 get 16). A stored length
/// beyond its capacity (shared memory written over) is a CorruptSegmentError, never a read outside.
///
/// As SharedMemory: a list created without a name is removed when the creating process drops its
/// last handle; one created with a name persists until unlink().
template <class T>
class ShareableList {
    static_assert(detail::SharedElement<T> || std::same_as<T, std::string>,
                  "ShareableList<T> needs std::string or a trivially copyable T without pointers");
    static_assert(alignof(T) <= detail::Segment::payload_alignment, "ShareableList<T>: T is over-aligned");

public:
    using value_type = T;
    /// What reads return: a copy. Const for class types, so that `list[i] = v`, which would assign
    /// to that copy, does not compile; write with set().
    using result_type = std::conditional_t<std::is_class_v<T>, const T, T>;

    /// Yields the items' values, read one by one as it advances.
    class const_iterator {
    public:
        using value_type = T;
        using difference_type = std::ptrdiff_t;
        using iterator_concept = std::forward_iterator_tag;
        const_iterator() = default;
        result_type operator*() const { return list_->at(index_); }
        const_iterator& operator++() {
            ++index_;
            return *this;
        }
        const_iterator operator++(int) {
            auto before = *this;
            ++index_;
            return before;
        }
        bool operator==(const const_iterator&) const = default;

    private:
        friend class ShareableList;
        const_iterator(const ShareableList* list, std::size_t index) : list_(list), index_(index) {}
        const ShareableList* list_ = nullptr;
        std::size_t index_ = 0;
    };

    /// Python's ShareableList(sequence): a new list with a generated name. Note that
    /// ShareableList<std::string>{"x"} holds "x", while ShareableList<std::string>("x") attaches to "x".
    ShareableList(std::initializer_list<T> values) : slots_(make("", values)) {}
    template <detail::ListSource<T> Range>
    explicit ShareableList(const Range& values) : slots_(make("", values)) {}
    /// Python's ShareableList(sequence, name=name): a new list called `name`, which persists until
    /// unlink(); FileExistsError when the name is taken.
    ShareableList(std::initializer_list<T> values, const std::string& name) : slots_(make(checked(name), values)) {}
    template <detail::ListSource<T> Range>
    ShareableList(const Range& values, const std::string& name) : slots_(make(checked(name), values)) {}
    /// Python's ShareableList(name=name): attaches to an existing list. FileNotFoundError when
    /// missing; a ValueError naming both when it is another kind of object or holds another type.
    explicit ShareableList(const std::string& name) : slots_(name) {}

    /// len(list).
    [[nodiscard]] std::size_t size() const noexcept { return slots_.size(); }
    /// Item `index` (IndexError past the end), as Python's list[index]; both spellings are checked.
    [[nodiscard]] result_type at(std::size_t index) const { return slots_.load(checked(index)); }
    [[nodiscard]] result_type operator[](std::size_t index) const { return at(index); }
    /// list[index] = value. IndexError past the end; for strings a ValueError when `value` is
    /// longer than the slot's capacity (fixed at creation).
    void set(std::size_t index, const T& value) { slots_.store(checked(index), value); }
    /// How many bytes item `index` may hold (strings only).
    [[nodiscard]] std::size_t capacity(std::size_t index) const
        requires std::same_as<T, std::string>
    {
        return slots_.capacity(checked(index));
    }

    [[nodiscard]] const_iterator begin() const noexcept { return {this, 0}; }
    [[nodiscard]] const_iterator end() const noexcept { return {this, size()}; }
    /// A copy of every item, each read as at() reads it (Python's list(sl)).
    [[nodiscard]] std::vector<T> to_vector() const { return std::vector<T>(begin(), end()); }

    /// How many items equal `value`.
    [[nodiscard]] std::size_t count(const T& value) const
        requires std::equality_comparable<T>
    {
        std::size_t found = 0;
        for (std::size_t i = 0; i < size(); ++i) found += slots_.load(i) == value ? 1 : 0;
        return found;
    }
    /// The first index holding `value`; a ValueError when none does.
    [[nodiscard]] std::size_t index(const T& value) const
        requires std::equality_comparable<T>
    {
        for (std::size_t i = 0; i < size(); ++i)
            if (slots_.load(i) == value) return i;
        throw ValueError("ShareableList '" + name() + "': " + describe(value) + " is not in the list");
    }

    /// The name other processes attach with (Python's shm.name).
    [[nodiscard]] const std::string& name() const noexcept { return slots_.segment()->name(); }
    /// The segment as a SharedMemory (Python's sl.shm): buf() is the list's raw payload.
    [[nodiscard]] SharedMemory shm() const { return SharedMemory(slots_.segment()); }
    /// Removes the name (Python's sl.shm.unlink()); a second unlink is a FileNotFoundError.
    void unlink() { slots_.segment()->unlink(); }

    void ipc_save(codec::Writer& writer) const { writer.write_string(name()); }
    static ShareableList ipc_load(codec::Reader& reader) { return ShareableList(reader.read_string()); }

private:
    template <class Range>
    static detail::ListSlots<T> make(const std::string& name, const Range& values) {
        std::vector<T> items;
        for (auto&& value : values) items.emplace_back(value);
        return detail::ListSlots<T>(name, std::span<const T>(items));
    }
    static const std::string& checked(const std::string& name) {
        detail::validate_name(name);  // an empty name would make an anonymous list
        return name;
    }
    std::size_t checked(std::size_t index) const {
        if (index >= size())
            throw IndexError("ShareableList '" + name() + "': index " + std::to_string(index) +
                             " is out of range (size " + std::to_string(size()) + ")");
        return index;
    }
    static std::string describe(const T& value) {
        if constexpr (std::same_as<T, std::string>)
            return "'" + (value.size() > 40 ? value.substr(0, 40) + "…" : value) + "'";
        else if constexpr (std::is_arithmetic_v<T>)
            return std::to_string(value);
        else
            return "the value";
    }

    detail::ListSlots<T> slots_;
};

}  // namespace ipc
