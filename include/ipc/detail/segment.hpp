// ipc/detail/segment.hpp — a named shared-memory segment whose header (magic, kind, version, element
// type and size) is checked on every open, and whose anonymous names are removed when their creator is done.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "ipc/detail/type_name.hpp"

namespace ipc::detail {

/// What a segment holds; opening it as another kind is an error naming both.
enum class Kind : std::uint32_t {
    shared_memory = 1,
    value,
    raw_value,
    array,
    raw_array,
    lock,
    rlock,
    semaphore,
    bounded_semaphore,
    event,
    condition,
    barrier,
    pipe,
    queue,
    shareable_list,
    manager,
};

std::string_view kind_name(Kind kind) noexcept;

/// The element type recorded in a segment header (tag 0 for segments without one).
struct ElementType {
    std::uint64_t tag = 0;
    std::uint64_t size = 0;
    std::string_view name;

    template <class T>
    static ElementType of() noexcept {
        return {type_tag<T>, sizeof(T), type_name<T>()};
    }
};

class Segment {
public:
    /// Payloads start at this alignment, so atomics and cache-line-padded state can live there.
    static constexpr std::size_t payload_alignment = 64;

    /// Creates a segment named `name`, or a generated, anonymous one when `name` is empty.
    /// `initialize` constructs the payload before any other process can open the segment.
    /// A taken name is a FileExistsError.
    static std::shared_ptr<Segment> create(const std::string& name, Kind kind, ElementType type,
                                           std::size_t payload_size,
                                           const std::function<void(std::span<std::byte>)>& initialize);
    /// Opens an existing segment and checks kind and element type; a missing name is a FileNotFoundError.
    static std::shared_ptr<Segment> open(const std::string& name, Kind kind, ElementType type);
    /// Opens and checks only that the segment is one of ipc's, whatever its kind.
    static std::shared_ptr<Segment> open_any(const std::string& name);

    ~Segment();
    Segment(const Segment&) = delete;
    Segment& operator=(const Segment&) = delete;

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] Kind kind() const noexcept;
    /// The element type its header records (the name bounded to the header's field).
    [[nodiscard]] ElementType element_type() const noexcept;
    /// True when the name was generated, so it is removed when the creating process drops it.
    [[nodiscard]] bool anonymous() const noexcept { return anonymous_; }
    [[nodiscard]] std::span<std::byte> payload() const noexcept { return payload_; }
    /// The payload from `offset` on, for a `what` (e.g. "Queue") whose fixed state comes first;
    /// CorruptSegmentError when the payload is not even that large.
    [[nodiscard]] std::span<std::byte> payload_after(std::size_t offset, std::string_view what) const;
    template <class T>
    [[nodiscard]] T* at(std::size_t offset = 0) const noexcept {
        return reinterpret_cast<T*>(payload_.data() + offset);
    }
    /// Removes the name; the memory stays mapped for every process that has it. A second unlink of
    /// the same name is a FileNotFoundError.
    void unlink();
    /// Removes `name` without opening it.
    static void unlink(const std::string& name);

    /// Only Segment can make the key, so only its factories construct one (through make_shared).
    class Key {
        friend class Segment;
        Key() = default;
    };
    Segment(Key, std::string name, void* base, std::size_t size, bool anonymous, bool created);

private:
    static std::shared_ptr<Segment> map_existing(const std::string& name);

    std::string name_;
    void* base_ = nullptr;
    std::size_t size_ = 0;
    std::span<std::byte> payload_;
    bool anonymous_ = false;
    bool owner_ = false;  // created by this process: only it removes an anonymous name
    int creator_pid_ = 0;
    bool unlinked_ = false;
};

/// Checks a user-given name: not empty, no '/', at most 200 characters. Throws ValueError.
void validate_name(std::string_view name);

}  // namespace ipc::detail
