// ipc/detail/manager_heap.hpp — what the proxies of managers.hpp call: a manager's shared heap, the
// containers in it (dicts and lists of encoded values), and the locked call every proxy method is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ipc/detail/codec_stream.hpp"

namespace ipc::detail {

/// A manager's heap as mapped in this process (private: ipc/managers/heap.hpp).
class ManagerHeap;

enum class ContainerKind : std::uint32_t { dict = 1, list = 2, namespace_object = 3 };

using EncodedBytes = std::span<const std::byte>;

/// One container of a manager's heap: what a proxy holds, and what crosses to another process as
/// (heap name, index). `key_tag`/`value_tag` are the codec tags of the proxy's types, checked
/// against the container's own when a proxy is loaded (0: any, a Namespace's values).
struct ContainerRef {
    std::shared_ptr<ManagerHeap> heap;
    std::uint32_t index = 0;

    void save(codec::Writer& writer) const;
    static ContainerRef load(codec::Reader& reader, ContainerKind kind, std::uint64_t key_tag, std::uint64_t value_tag);
    /// "dict 3 of manager 'ipc_…'", for messages.
    [[nodiscard]] std::string describe() const;
};

/// A new, empty container in `heap`.
ContainerRef create_container(const std::shared_ptr<ManagerHeap>& heap, ContainerKind kind, std::uint64_t key_tag,
                              std::uint64_t value_tag);

/// One proxy call: holds the heap's robust lock for its whole length, so a call sees and leaves
/// the container whole. A change is journaled and commits when the call returns; a call that
/// throws, or whose process dies halfway, is rolled back (the next caller does it, on OwnerDied).
/// The spans it returns point into the heap and are valid until the next change or the call's end.
class ContainerCall {
public:
    /// A call makes one change (most proxy methods), or several that must land together (an
    /// update of a few keys): those are all journaled, where a single one often needs no journal.
    enum class Changes { one, several };
    explicit ContainerCall(const ContainerRef& ref, Changes changes = Changes::one);
    ~ContainerCall();
    ContainerCall(const ContainerCall&) = delete;
    ContainerCall& operator=(const ContainerCall&) = delete;

    // A dict, in insertion order as Python's: keys compare by their encoding.
    [[nodiscard]] std::size_t dict_size() const;
    [[nodiscard]] std::optional<EncodedBytes> dict_find(EncodedBytes key) const;
    /// Sets the key's value; true when the key was new.
    bool dict_set(EncodedBytes key, EncodedBytes value);
    bool dict_erase(EncodedBytes key);
    /// The last inserted (key, value), for popitem; empty when the dict is.
    [[nodiscard]] std::optional<std::pair<EncodedBytes, EncodedBytes>> dict_last() const;
    void dict_for_each(const std::function<void(EncodedBytes key, EncodedBytes value)>& visit) const;
    void dict_clear();
    /// Sets every pair, all or none: a few in place, more in a new table committed at once.
    void dict_update(const std::vector<std::pair<EncodedBytes, EncodedBytes>>& pairs);

    // A list: indexes are checked by the caller (Python's negative ones resolved).
    [[nodiscard]] std::size_t list_size() const;
    [[nodiscard]] EncodedBytes list_at(std::size_t index) const;
    void list_set(std::size_t index, EncodedBytes item);
    /// Inserts before `index` (the size appends).
    void list_insert(std::size_t index, EncodedBytes item);
    void list_append(EncodedBytes item);
    void list_erase(std::size_t index);
    void list_extend(const std::vector<EncodedBytes>& items);
    /// Replaces the whole list: built apart, then committed at once.
    void list_assign(const std::vector<EncodedBytes>& items);
    /// Reorders the list (sort, reverse): item `order[i]` becomes item i.
    void list_permute(const std::vector<std::size_t>& order);

    /// "dict 3 of manager 'ipc_…'", for messages.
    [[nodiscard]] std::string describe() const;

private:
    ManagerHeap& heap_;
    std::uint32_t index_;
    int uncaught_;
};

/// Thread-local scratch buffers for a call's encoded key and value (reused, never shrunk).
std::vector<std::byte>& scratch_key() noexcept;
std::vector<std::byte>& scratch_value() noexcept;

}  // namespace ipc::detail
