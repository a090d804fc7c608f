// ipc/managers.hpp — Python's multiprocessing.managers: a Manager process and the dict, list and
// Namespace proxies it hands out, which any process may use and pass on. Unlike Python's, a proxy
// call is no message to the manager: the containers live in a shared heap the manager owns, and a
// call is a few memory operations under the heap's robust lock. And BaseManager: types registered
// by name, served by a manager process, this process or another machine, called through Proxy<T>.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ipc/codec.hpp"
#include "ipc/connection.hpp"
#include "ipc/detail/manager_calls.hpp"
#include "ipc/detail/manager_heap.hpp"
#include "ipc/error.hpp"
#include "ipc/listener.hpp"
#include "ipc/process.hpp"
#include "ipc/queues.hpp"
#include "ipc/sharedctypes.hpp"
#include "ipc/shared_memory.hpp"
#include "ipc/synchronize.hpp"

namespace ipc {

namespace detail {

template <class T>
EncodedBytes encode_to(std::vector<std::byte>& buffer, const T& value) {
    encode_into(buffer, value);
    return buffer;
}

/// A key or name as Python's KeyError shows it, where C++ can print it.
template <class K>
std::string quote_key(const K& key) {
    if constexpr (std::is_convertible_v<const K&, std::string_view>) return "'" + std::string(std::string_view(key)) + "'";
    else if constexpr (std::is_same_v<K, bool>) return key ? "true" : "false";
    else if constexpr (std::is_arithmetic_v<K>) return std::to_string(key);
    else return "the key";
}

/// Python's index rules: a negative index counts from the end.
inline std::optional<std::size_t> resolve_index(std::ptrdiff_t index, std::size_t size) noexcept {
    const auto resolved = index < 0 ? index + static_cast<std::ptrdiff_t>(size) : index;
    if (resolved < 0 || resolved >= static_cast<std::ptrdiff_t>(size)) return std::nullopt;
    return static_cast<std::size_t>(resolved);
}

/// Python's slice rules: negative bounds count from the end, and both are clamped to the list.
inline std::size_t clamp_index(std::ptrdiff_t index, std::size_t size) noexcept {
    const auto n = static_cast<std::ptrdiff_t>(size);
    const auto resolved = index < 0 ? index + n : index;
    return static_cast<std::size_t>(std::clamp<std::ptrdiff_t>(resolved, 0, n));
}

}  // namespace detail

/// A dict in a manager's heap (Python's DictProxy). Copies refer to the same dict; it crosses to
/// other processes (Process arguments, Pool tasks, Queue messages, other proxies' values) under
/// every start method. Keys compare by their encoding (equal for equal strings and integers;
/// 0.0 and -0.0 are two keys); iteration is in insertion order, as Python's.
template <class K, class V>
class DictProxy {
public:
    DictProxy() = default;
    explicit DictProxy(detail::ContainerRef ref) noexcept : ref_(std::move(ref)) {}

    /// `d[key]` reads (KeyError when missing) and `d[key] = value` sets, as in Python.
    class Item {
    public:
        Item& operator=(const V& value) {
            dict_.set(key_, value);
            return *this;
        }
        operator V() const { return dict_.at(key_); }  // NOLINT: reads as Python's d[key]
        [[nodiscard]] V value() const { return dict_.at(key_); }

    private:
        friend class DictProxy;
        Item(const DictProxy& dict, const K& key) : dict_(dict), key_(key) {}
        const DictProxy& dict_;
        K key_;
    };
    Item operator[](const K& key) const { return Item(*this, key); }

    /// The value of `key`; KeyError when the dict does not hold it.
    [[nodiscard]] V at(const K& key) const {
        const auto encoded = detail::encode_to(detail::scratch_key(), key);
        detail::ContainerCall call(ref_);
        const auto value = call.dict_find(encoded);
        if (!value) throw_key_error(call, key);
        return decode<V>(*value);
    }
    [[nodiscard]] std::optional<V> get(const K& key) const {
        const auto encoded = detail::encode_to(detail::scratch_key(), key);
        detail::ContainerCall call(ref_);
        const auto value = call.dict_find(encoded);
        if (!value) return std::nullopt;
        return decode<V>(*value);
    }
    [[nodiscard]] V get(const K& key, const V& default_value) const { return get(key).value_or(default_value); }
    [[nodiscard]] bool contains(const K& key) const {
        const auto encoded = detail::encode_to(detail::scratch_key(), key);
        detail::ContainerCall call(ref_);
        return call.dict_find(encoded).has_value();
    }

    void set(const K& key, const V& value) const {
        const auto encoded_key = detail::encode_to(detail::scratch_key(), key);
        const auto encoded_value = detail::encode_to(detail::scratch_value(), value);
        detail::ContainerCall call(ref_);
        call.dict_set(encoded_key, encoded_value);
    }
    /// The value of `key`, after setting it to `default_value` when the dict did not hold it.
    V setdefault(const K& key, const V& default_value) const {
        const auto encoded_key = detail::encode_to(detail::scratch_key(), key);
        detail::ContainerCall call(ref_);
        if (const auto value = call.dict_find(encoded_key)) return decode<V>(*value);
        call.dict_set(encoded_key, detail::encode_to(detail::scratch_value(), default_value));
        return default_value;
    }
    /// Removes `key` and returns its value; KeyError when the dict does not hold it.
    V pop(const K& key) const {
        auto value = pop_if(key);
        if (!value) throw KeyError(ref_.describe() + ": no key " + detail::quote_key(key));
        return std::move(*value);
    }
    V pop(const K& key, const V& default_value) const { return pop_if(key).value_or(default_value); }
    /// Removes and returns the last inserted pair; KeyError when the dict is empty.
    std::pair<K, V> popitem() const {
        detail::ContainerCall call(ref_);
        const auto last = call.dict_last();
        if (!last) throw KeyError(call.describe() + ": popitem(): dictionary is empty");
        std::pair<K, V> item{decode<K>(last->first), decode<V>(last->second)};
        call.dict_erase(last->first);
        return item;
    }
    /// Removes `key`; 0 when the dict did not hold it (Python's `del d[key]` raises KeyError then).
    std::size_t erase(const K& key) const {
        const auto encoded = detail::encode_to(detail::scratch_key(), key);
        detail::ContainerCall call(ref_);
        return call.dict_erase(encoded) ? 1 : 0;
    }
    /// Sets every (key, value) of `pairs` (a map, or a range of pairs) in one call: all or none.
    template <class Pairs>
    void update(const Pairs& pairs) const {
        std::vector<std::pair<std::vector<std::byte>, std::vector<std::byte>>> encoded;
        for (const auto& [key, value] : pairs) encoded.emplace_back(encode(K(key)), encode(V(value)));
        const std::vector<std::pair<detail::EncodedBytes, detail::EncodedBytes>> views(encoded.begin(), encoded.end());
        detail::ContainerCall call(ref_, detail::ContainerCall::Changes::several);
        call.dict_update(views);
    }
    void update(std::initializer_list<std::pair<K, V>> pairs) const { update<std::initializer_list<std::pair<K, V>>>(pairs); }

    [[nodiscard]] std::vector<K> keys() const {
        std::vector<K> out;
        detail::ContainerCall call(ref_);
        call.dict_for_each([&](detail::EncodedBytes key, detail::EncodedBytes) { out.push_back(decode<K>(key)); });
        return out;
    }
    [[nodiscard]] std::vector<V> values() const {
        std::vector<V> out;
        detail::ContainerCall call(ref_);
        call.dict_for_each([&](detail::EncodedBytes, detail::EncodedBytes value) { out.push_back(decode<V>(value)); });
        return out;
    }
    [[nodiscard]] std::vector<std::pair<K, V>> items() const {
        std::vector<std::pair<K, V>> out;
        detail::ContainerCall call(ref_);
        call.dict_for_each([&](detail::EncodedBytes key, detail::EncodedBytes value) {
            out.emplace_back(decode<K>(key), decode<V>(value));
        });
        return out;
    }
    /// A plain copy (Python's `d.copy()`): a std::map by default, or any map type built from pairs.
    template <class Map = std::map<K, V>>
    [[nodiscard]] Map copy() const {
        const auto pairs = items();
        return Map(pairs.begin(), pairs.end());
    }
    [[nodiscard]] std::size_t size() const {
        detail::ContainerCall call(ref_);
        return call.dict_size();
    }
    [[nodiscard]] bool empty() const { return size() == 0; }
    void clear() const {
        detail::ContainerCall call(ref_);
        call.dict_clear();
    }

    void ipc_save(codec::Writer& writer) const { ref_.save(writer); }
    static DictProxy ipc_load(codec::Reader& reader) {
        return DictProxy(detail::ContainerRef::load(reader, detail::ContainerKind::dict, codec::registered_tag<K>(),
                                                    codec::registered_tag<V>()));
    }
    friend bool operator==(const DictProxy& a, const DictProxy& b) noexcept {
        return a.ref_.heap == b.ref_.heap && a.ref_.index == b.ref_.index;
    }

private:
    [[noreturn]] static void throw_key_error(const detail::ContainerCall& call, const K& key) {
        throw KeyError(call.describe() + ": no key " + detail::quote_key(key));
    }
    std::optional<V> pop_if(const K& key) const {
        const auto encoded = detail::encode_to(detail::scratch_key(), key);
        detail::ContainerCall call(ref_);
        const auto value = call.dict_find(encoded);
        if (!value) return std::nullopt;
        auto decoded = decode<V>(*value);
        call.dict_erase(encoded);
        return decoded;
    }

    detail::ContainerRef ref_;
};

/// A list in a manager's heap (Python's ListProxy). Copies refer to the same list; it crosses to
/// other processes as a DictProxy does. Indexes follow Python's rules (negative ones count from the
/// end); items compare (remove, index, count) by their encoding.
template <class T>
class ListProxy {
public:
    ListProxy() = default;
    explicit ListProxy(detail::ContainerRef ref) noexcept : ref_(std::move(ref)) {}

    /// `l[i]` reads and `l[i] = value` sets; IndexError outside the list.
    class Item {
    public:
        Item& operator=(const T& value) {
            list_.set(index_, value);
            return *this;
        }
        operator T() const { return list_.at(index_); }  // NOLINT: reads as Python's l[i]
        [[nodiscard]] T value() const { return list_.at(index_); }

    private:
        friend class ListProxy;
        Item(const ListProxy& list, std::ptrdiff_t index) noexcept : list_(list), index_(index) {}
        const ListProxy& list_;
        std::ptrdiff_t index_;
    };
    Item operator[](std::ptrdiff_t index) const noexcept { return Item(*this, index); }

    [[nodiscard]] T at(std::ptrdiff_t index) const {
        detail::ContainerCall call(ref_);
        return decode<T>(call.list_at(checked(call, index, "list index out of range")));
    }
    void set(std::ptrdiff_t index, const T& value) const {
        const auto encoded = detail::encode_to(detail::scratch_value(), value);
        detail::ContainerCall call(ref_);
        call.list_set(checked(call, index, "list assignment index out of range"), encoded);
    }
    void append(const T& value) const {
        const auto encoded = detail::encode_to(detail::scratch_value(), value);
        detail::ContainerCall call(ref_);
        call.list_append(encoded);
    }
    /// Appends every item of `items` in one call.
    template <class Range>
    void extend(const Range& items) const {
        std::vector<std::vector<std::byte>> encoded;
        for (const auto& item : items) encoded.push_back(encode(T(item)));
        const std::vector<detail::EncodedBytes> views(encoded.begin(), encoded.end());
        detail::ContainerCall call(ref_);
        call.list_extend(views);
    }
    void extend(std::initializer_list<T> items) const { extend<std::initializer_list<T>>(items); }
    /// Inserts before `index`; as in Python, an index past either end inserts at that end.
    void insert(std::ptrdiff_t index, const T& value) const {
        const auto encoded = detail::encode_to(detail::scratch_value(), value);
        detail::ContainerCall call(ref_);
        call.list_insert(detail::clamp_index(index, call.list_size()), encoded);
    }
    /// Removes and returns item `index` (the last by default); IndexError when there is none.
    T pop(std::ptrdiff_t index = -1) const {
        detail::ContainerCall call(ref_);
        if (call.list_size() == 0) throw IndexError(call.describe() + ": pop from empty list");
        const auto at = checked(call, index, "pop index out of range");
        T item = decode<T>(call.list_at(at));
        call.list_erase(at);
        return item;
    }
    /// Removes the first item equal to `value`; ValueError when there is none.
    void remove(const T& value) const {
        const auto encoded = detail::encode_to(detail::scratch_value(), value);
        detail::ContainerCall call(ref_);
        const auto at = find(call, encoded, 0, call.list_size());
        if (!at) throw ValueError(call.describe() + ": list.remove(x): x not in list");
        call.list_erase(*at);
    }
    /// The position of the first item equal to `value` in [begin, end) (Python's slice rules);
    /// ValueError when there is none.
    [[nodiscard]] std::size_t index(const T& value, std::ptrdiff_t begin = 0,
                                    std::ptrdiff_t end = std::numeric_limits<std::ptrdiff_t>::max()) const {
        const auto encoded = detail::encode_to(detail::scratch_value(), value);
        detail::ContainerCall call(ref_);
        const auto size = call.list_size();
        const auto at = find(call, encoded, detail::clamp_index(begin, size), detail::clamp_index(end, size));
        if (!at) throw ValueError(call.describe() + ": x is not in list");
        return *at;
    }
    [[nodiscard]] std::size_t count(const T& value) const {
        const auto encoded = detail::encode_to(detail::scratch_value(), value);
        detail::ContainerCall call(ref_);
        std::size_t n = 0;
        for (std::size_t i = 0, size = call.list_size(); i < size; ++i) n += same(call.list_at(i), encoded);
        return n;
    }
    /// Sorts in place, stably, by `less` (operator< by default), all in one call: `less` must not
    /// call this manager's proxies (ValueError), since the call holds the heap.
    template <class Less = std::less<>>
    void sort(Less less = {}) const {
        detail::ContainerCall call(ref_);
        std::vector<T> items;
        const auto size = call.list_size();
        items.reserve(size);
        for (std::size_t i = 0; i < size; ++i) items.push_back(decode<T>(call.list_at(i)));
        std::vector<std::size_t> order(size);
        std::iota(order.begin(), order.end(), std::size_t{0});
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return less(items[a], items[b]); });
        call.list_permute(order);
    }
    void reverse() const {
        detail::ContainerCall call(ref_);
        std::vector<std::size_t> order(call.list_size());
        std::iota(order.rbegin(), order.rend(), std::size_t{0});
        call.list_permute(order);
    }
    /// Replaces the whole list (Python's `l[:] = items`).
    template <class Range>
    void assign(const Range& items) const {
        std::vector<std::vector<std::byte>> encoded;
        for (const auto& item : items) encoded.push_back(encode(T(item)));
        const std::vector<detail::EncodedBytes> views(encoded.begin(), encoded.end());
        detail::ContainerCall call(ref_);
        call.list_assign(views);
    }
    void clear() const { assign(std::vector<T>{}); }

    /// The items in [begin, end), Python's slice `l[begin:end]` as a plain vector.
    [[nodiscard]] std::vector<T> copy(std::ptrdiff_t begin = 0, std::ptrdiff_t end = std::numeric_limits<std::ptrdiff_t>::max()) const {
        detail::ContainerCall call(ref_);
        const auto size = call.list_size();
        const auto first = detail::clamp_index(begin, size);
        const auto last = std::max(first, detail::clamp_index(end, size));
        std::vector<T> out;
        out.reserve(last - first);
        for (auto i = first; i < last; ++i) out.push_back(decode<T>(call.list_at(i)));
        return out;
    }
    [[nodiscard]] std::size_t size() const {
        detail::ContainerCall call(ref_);
        return call.list_size();
    }
    [[nodiscard]] bool empty() const { return size() == 0; }

    void ipc_save(codec::Writer& writer) const { ref_.save(writer); }
    static ListProxy ipc_load(codec::Reader& reader) {
        return ListProxy(detail::ContainerRef::load(reader, detail::ContainerKind::list, 0, codec::registered_tag<T>()));
    }
    friend bool operator==(const ListProxy& a, const ListProxy& b) noexcept {
        return a.ref_.heap == b.ref_.heap && a.ref_.index == b.ref_.index;
    }

private:
    static std::size_t checked(const detail::ContainerCall& call, std::ptrdiff_t index, const char* problem) {
        const auto at = detail::resolve_index(index, call.list_size());
        if (!at) throw IndexError(call.describe() + ": " + problem + " (index " + std::to_string(index) + ")");
        return *at;
    }
    static bool same(detail::EncodedBytes a, detail::EncodedBytes b) noexcept {
        return std::equal(a.begin(), a.end(), b.begin(), b.end());
    }
    static std::optional<std::size_t> find(const detail::ContainerCall& call, detail::EncodedBytes encoded,
                                           std::size_t begin, std::size_t end) {
        for (auto i = begin; i < end; ++i)
            if (same(call.list_at(i), encoded)) return i;
        return std::nullopt;
    }

    detail::ContainerRef ref_;
};

/// Named values of any encodable types (Python's Namespace): `ns.set("x", 1)`, `ns.get<int>("x")`.
/// Reading a name as another type than it holds is a CodecError naming both.
class NamespaceProxy {
public:
    NamespaceProxy() = default;
    explicit NamespaceProxy(detail::ContainerRef ref) noexcept : ref_(std::move(ref)) {}

    template <class T>
    void set(std::string_view name, const T& value) const {
        const auto encoded_name = detail::encode_to(detail::scratch_key(), std::string(name));
        const auto encoded_value = detail::encode_to(detail::scratch_value(), value);
        detail::ContainerCall call(ref_);
        call.dict_set(encoded_name, encoded_value);
    }
    /// The value of `name`; AttributeError when the Namespace has none.
    template <class T>
    [[nodiscard]] T get(std::string_view name) const {
        const auto encoded = detail::encode_to(detail::scratch_key(), std::string(name));
        detail::ContainerCall call(ref_);
        const auto value = call.dict_find(encoded);
        if (!value) throw AttributeError(call.describe() + ": 'Namespace' object has no attribute '" + std::string(name) + "'");
        return decode<T>(*value);
    }
    [[nodiscard]] bool contains(std::string_view name) const {
        const auto encoded = detail::encode_to(detail::scratch_key(), std::string(name));
        detail::ContainerCall call(ref_);
        return call.dict_find(encoded).has_value();
    }
    /// Removes `name` (Python's delattr); AttributeError when the Namespace has none.
    void erase(std::string_view name) const {
        const auto encoded = detail::encode_to(detail::scratch_key(), std::string(name));
        detail::ContainerCall call(ref_);
        if (!call.dict_erase(encoded))
            throw AttributeError(call.describe() + ": 'Namespace' object has no attribute '" + std::string(name) + "'");
    }
    /// The names, in the order they were first set.
    [[nodiscard]] std::vector<std::string> names() const {
        std::vector<std::string> out;
        detail::ContainerCall call(ref_);
        call.dict_for_each([&](detail::EncodedBytes name, detail::EncodedBytes) { out.push_back(decode<std::string>(name)); });
        return out;
    }

    void ipc_save(codec::Writer& writer) const { ref_.save(writer); }
    static NamespaceProxy ipc_load(codec::Reader& reader) {
        return NamespaceProxy(detail::ContainerRef::load(reader, detail::ContainerKind::namespace_object,
                                                         codec::registered_tag<std::string>(), 0));
    }

private:
    detail::ContainerRef ref_;
};

/// A proxy of an object served by a BaseManager (Python's BaseProxy): its methods run in the server,
/// which may be another process or another machine. Copies refer to the same object; it crosses to
/// other processes (Process arguments, Pool tasks, messages) under every start method, without the
/// manager's authkey: a process that got one uses the key its BaseManager was given there (or its
/// own authkey, which children inherit).
template <class T>
class Proxy {
public:
    Proxy() = default;
    explicit Proxy(detail::ObjectRef ref) noexcept : ref_(std::move(ref)) {}

    /// Calls exposed method `Member` of T in the server, with the method's own parameter and result
    /// types: `counter.call<&Counter::add>(5)`. A method returning std::shared_ptr<U> hands out a
    /// new served object: the call returns a Proxy<U>. What the method throws is thrown here.
    template <auto Member, class... Args>
    auto call(Args&&... args) const {
        using Traits = detail::MemberTraits<decltype(Member)>;
        static_assert(std::is_base_of_v<typename Traits::object, T>, "Proxy<T>::call: the method is not one of T's");
        using Arguments = typename Traits::arguments;
        static_assert(std::is_constructible_v<Arguments, Args&&...>,
                      "Proxy<T>::call: the arguments do not convert to the method's parameters");
        const auto encoded = encode(Arguments(std::forward<Args>(args)...));
        return result_as<typename Traits::result>(
            detail::manager_call(ref_, detail::member_key<Member>, detail::member_name<Member>(), encoded));
    }
    /// Calls a method by the name it was exposed under (Python's proxy._callmethod(name, args)); the
    /// arguments must have the method's parameter types exactly (else a CodecError) and R is what it
    /// returns: a value, void, or a Proxy<U> for a method that hands out objects.
    template <class R = void, class... Args>
    R callmethod(std::string_view name, const Args&... args) const {
        const auto encoded = encode(std::tuple<Args...>(args...));
        return result_as<R>(detail::manager_call(ref_, 0, name, encoded));
    }

    /// The typeid the object was made as (Python's proxy._token.typeid), and its id in the server.
    [[nodiscard]] const std::string& type_id() const noexcept { return ref_.type_id; }
    [[nodiscard]] std::uint64_t id() const noexcept { return ref_.id; }
    /// The server's address.
    [[nodiscard]] const std::string& address() const noexcept { return ref_.address; }

    void ipc_save(codec::Writer& writer) const { ref_.save(writer); }
    static Proxy ipc_load(codec::Reader& reader) {
        return Proxy(detail::ObjectRef::load(reader, codec::registered_tag<T>(), detail::type_name<T>()));
    }
    friend bool operator==(const Proxy& a, const Proxy& b) noexcept {
        return a.ref_.address == b.ref_.address && a.ref_.id == b.ref_.id;
    }

private:
    template <class R>
    static auto result_as(detail::CallReply reply) {
        using Result = std::decay_t<R>;
        if constexpr (std::is_void_v<Result>) {
            return;
        } else if constexpr (detail::returns_served_v<Result> || is_proxy<Result>) {
            using Served = std::conditional_t<is_proxy<Result>, typename ProxyTraits<Result>::type,
                                              typename detail::SharedPointee<Result>::type>;
            if (!reply.object) throw CodecError("a proxy call: the method returned a value, not an object to serve");
            detail::check_served_type(*reply.object, codec::registered_tag<Served>(), detail::type_name<Served>());
            return Proxy<Served>(std::move(*reply.object));
        } else {
            if (reply.object) throw CodecError("a proxy call: the method handed out an object, ask for a Proxy");
            return decode<Result>(reply.encoded);
        }
    }
    template <class P>
    struct ProxyTraits {
        using type = void;
    };
    template <class U>
    struct ProxyTraits<Proxy<U>> {
        using type = U;
    };
    template <class P>
    static constexpr bool is_proxy = !std::is_void_v<typename ProxyTraits<P>::type>;

    detail::ObjectRef ref_;
};

/// What BaseManager::register_type returns, to expose methods (Python's `exposed` and
/// `method_to_typeid`): `.method<&Counter::add>("add").method<&Counter::value>("value")`.
template <class T>
class TypeRegistration {
public:
    explicit TypeRegistration(detail::TypeEntry& entry) noexcept : entry_(&entry) {}

    /// Exposes `Member` under `name`. A method returning std::shared_ptr<U> hands out U objects,
    /// served as `result_typeid` (by default: the one typeid registered for U).
    template <auto Member>
    TypeRegistration& method(std::string name, std::string result_typeid = {}) {
        using Traits = detail::MemberTraits<decltype(Member)>;
        static_assert(std::is_base_of_v<typename Traits::object, T>, "register_type: the method is not one of T's");
        static_assert(codec::Encodable<typename Traits::arguments>,
                      "register_type: a parameter type cannot be encoded by ipc::codec");
        using Result = std::decay_t<typename Traits::result>;
        static_assert(std::is_void_v<Result> || detail::returns_served_v<Result> || codec::Encodable<Result>,
                      "register_type: the result type cannot be encoded by ipc::codec (return a std::shared_ptr "
                      "to hand out a served object instead)");
        for (const auto& exposed : entry_->methods) {
            if (exposed.name == name) throw ValueError("register_type '" + entry_->type_id + "': method '" + name + "' exposed twice");
            if (exposed.key == detail::member_key<Member>)
                throw ValueError("register_type '" + entry_->type_id + "': " + std::string(detail::member_name<Member>()) +
                                 " is exposed already, as '" + exposed.name + "'");
        }
        entry_->methods.push_back({std::move(name), detail::member_key<Member>, &detail::invoke_member<Member>,
                                   std::move(result_typeid)});
        return *this;
    }
    /// Lets calls on one object run side by side (a thread-safe object whose methods may block,
    /// as a queue's get); by default a served object takes one call at a time.
    TypeRegistration& concurrent() noexcept {
        entry_->concurrent = true;
        return *this;
    }

private:
    detail::TypeEntry* entry_;
};

class ManagerServer;
namespace detail {
struct ServerState;
struct BaseManagerControl;
ManagerServer server_of(std::shared_ptr<ServerState> state);
}  // namespace detail

/// A BaseManager's server (Python's Server, from get_server()): listens from the moment it is made,
/// serves until stop() or a client's BaseManager::shutdown(). Each client connection is served by
/// its own thread, as in Python.
class ManagerServer {
public:
    ManagerServer(ManagerServer&&) noexcept;
    ManagerServer& operator=(ManagerServer&&) noexcept;
    ~ManagerServer();

    /// Serves until stop() (from another thread) or a shutdown request; then stops listening.
    void serve_forever();
    /// Ends serve_forever(): safe from any thread.
    void stop() noexcept;
    /// The address clients connect to (over TCP with the real port: "tcp://127.0.0.1:50000").
    [[nodiscard]] const std::string& address() const;

private:
    friend ManagerServer detail::server_of(std::shared_ptr<detail::ServerState> state);
    explicit ManagerServer(std::shared_ptr<detail::ServerState> state) noexcept;
    std::shared_ptr<detail::ServerState> state_;
};

struct BaseManagerOptions {
    /// Where the server listens: a Listener address ("tcp://host:port", a socket path, "@name");
    /// empty: a fresh abstract Unix-domain address, for processes of this machine.
    std::string address = {};
    /// The key clients must prove they know; none: this process's authkey (inherited by children).
    std::optional<std::string> authkey = {};
    std::optional<StartMethod> start_method = {};  ///< for start(); empty: get_start_method()
};

/// Python's BaseManager: types registered by name, objects of them made and kept in a server (a
/// manager process after start(), this process in get_server().serve_forever(), or someone else's
/// after connect()), and proxies whose calls run there.
///
///     ipc::BaseManager manager;
///     manager.register_type<Counter>("Counter").method<&Counter::add>("add");
///     manager.start();
///     auto counter = manager.create<Counter>("Counter");
///     counter.call<&Counter::add>(5);
class BaseManager {
public:
    BaseManager() : BaseManager(BaseManagerOptions{}) {}
    explicit BaseManager(BaseManagerOptions options);
    /// Python's BaseManager(address=..., authkey=...).
    BaseManager(std::string address, std::string authkey)
        : BaseManager(BaseManagerOptions{std::move(address), std::move(authkey)}) {}
    BaseManager(const TcpAddress& address, std::string authkey) : BaseManager(to_string(address), std::move(authkey)) {}
    ~BaseManager();
    BaseManager(BaseManager&&) noexcept;
    BaseManager& operator=(BaseManager&&) noexcept;

    /// Registers `type_id`: create() makes a T from the constructor arguments `Args` (Python's
    /// register(typeid, T)). Register before start() or get_server(); a client that only
    /// connect()s needs no registration.
    template <class T, class... Args>
    TypeRegistration<T> register_type(std::string type_id) {
        static_assert(std::is_constructible_v<T, Args...>, "register_type<T, Args...>: T has no constructor T(Args...)");
        static_assert(codec::Encodable<std::tuple<Args...>>, "register_type: a constructor argument cannot be encoded");
        return TypeRegistration<T>(add_type(std::move(type_id), codec::registered_tag<T>(), std::string(detail::type_name<T>()),
                                            &detail::construct_object<T, Args...>, nullptr));
    }
    /// Registers `type_id` made by `callable` (Python's register(typeid, callable=...)): a plain
    /// function or captureless lambda, run in the server with create()'s arguments. It may return a
    /// T, a std::shared_ptr<T>, or a T& or T* to an object it keeps (Python's `lambda: queue`):
    /// every create() of such a typeid then serves the same object.
    template <class T, class F>
    TypeRegistration<T> register_type(std::string type_id, F callable) {
        static_assert(detail::is_function_pointer_v<F> || detail::is_stateless_callable_v<F>,
                      "register_type: the callable runs in the manager process, so it must be a plain function or a "
                      "captureless lambda");
        const void* code = nullptr;
        if constexpr (detail::is_function_pointer_v<F>) code = reinterpret_cast<const void*>(callable);
        return TypeRegistration<T>(add_type(std::move(type_id), codec::registered_tag<T>(), std::string(detail::type_name<T>()),
                                            &detail::call_factory<T, F>, code));
    }

    /// Starts a manager process (under the start method) that serves the registered types.
    void start();
    /// A server in this process for the registered types, listening already (Python's get_server()).
    [[nodiscard]] ManagerServer get_server();
    /// Uses the server already listening at the address (Python's connect()); AuthenticationError
    /// for a wrong key, ConnectionRefusedError or FileNotFoundError when nobody listens.
    void connect();

    /// A new object of `type_id`, made in the server from `args`, and its proxy. The typeid must
    /// serve a T (else a CodecError naming both); the arguments must be what its constructor or
    /// callable takes, with the same types.
    template <class T, class... Args>
    [[nodiscard]] Proxy<T> create(std::string_view type_id, const Args&... args) {
        const auto encoded = encode(std::tuple<Args...>(args...));
        auto ref = detail::manager_create(server_address(), type_id, encoded);
        detail::check_served_type(ref, codec::registered_tag<T>(), detail::type_name<T>());
        return Proxy<T>(std::move(ref));
    }

    /// Stops the server: a started manager process is shut down (killed if it does not stop
    /// within a second), a connected server asked to stop. Idempotent; the destructor of a
    /// manager that start()ed does it.
    void shutdown();
    /// The server's address (over TCP with the real port once started).
    [[nodiscard]] const std::string& address() const noexcept { return address_; }
    /// The manager process's pid, while one runs.
    [[nodiscard]] std::optional<pid_t> pid() const;

private:
    detail::TypeEntry& add_type(std::string type_id, std::uint64_t tag, std::string type_name, detail::ObjectFactory factory,
                                const void* callable);
    [[nodiscard]] const std::string& server_address() const;

    BaseManagerOptions options_;
    std::string address_;
    std::string authkey_;
    std::unique_ptr<detail::TypeTable> types_;
    std::optional<Process> process_;
    std::unique_ptr<detail::BaseManagerControl> control_;
    enum class State { fresh, started, serving, connected, shut_down } state_ = State::fresh;
};

namespace detail {
struct ManagerControl;
}

struct ManagerOptions {
    /// Bytes for the values of every container (reserved in /dev/shm when the manager starts).
    std::size_t heap_size = std::size_t{32} << 20;
    /// How many dicts, lists and Namespaces the manager can hold; they live until it shuts down.
    std::size_t max_objects = 65536;
    std::optional<StartMethod> start_method = {};  ///< empty: get_start_method()
};

/// Python's `multiprocessing.Manager()` (a started SyncManager): a manager process that owns a
/// shared heap, and the proxies made in it. The destructor shuts it down (Python's `with` block);
/// proxies used afterwards, or after the manager process died, fail with ManagerError.
class Manager {
public:
    Manager() : Manager(ManagerOptions{}) {}
    explicit Manager(ManagerOptions options);
    ~Manager();
    Manager(Manager&&) noexcept;
    Manager& operator=(Manager&&) noexcept;

    template <class K, class V>
    [[nodiscard]] DictProxy<K, V> dict() {
        return DictProxy<K, V>(detail::create_container(heap(), detail::ContainerKind::dict, codec::registered_tag<K>(),
                                                        codec::registered_tag<V>()));
    }
    template <class K, class V>
    [[nodiscard]] DictProxy<K, V> dict(std::initializer_list<std::pair<K, V>> items) {
        auto proxy = dict<K, V>();
        proxy.update(items);
        return proxy;
    }
    template <class T>
    [[nodiscard]] ListProxy<T> list() {
        return ListProxy<T>(detail::create_container(heap(), detail::ContainerKind::list, 0, codec::registered_tag<T>()));
    }
    template <class T>
    [[nodiscard]] ListProxy<T> list(std::initializer_list<T> items) {
        auto proxy = list<T>();
        proxy.extend(items);
        return proxy;
    }
    [[nodiscard]] NamespaceProxy Namespace() {  // NOLINT: Python's name
        return NamespaceProxy(detail::create_container(heap(), detail::ContainerKind::namespace_object,
                                                       codec::registered_tag<std::string>(), 0));
    }

    // Python's managed Queue, Lock, … : here they are ipc's own objects, which every process may
    // use and pass on already; the manager keeps each alive until it shuts down, so that a
    // process given one later can still open it after its maker dropped its handles.
    template <class T, class... Args>
    [[nodiscard]] ipc::Queue<T> Queue(Args&&... args) {  // NOLINT: Python's names, from here on
        return keep(ipc::Queue<T>(std::forward<Args>(args)...));
    }
    template <class T, class... Args>
    [[nodiscard]] ipc::JoinableQueue<T> JoinableQueue(Args&&... args) {
        return keep(ipc::JoinableQueue<T>(std::forward<Args>(args)...));
    }
    [[nodiscard]] ipc::Lock Lock() { return keep(ipc::Lock()); }
    [[nodiscard]] ipc::RLock RLock() { return keep(ipc::RLock()); }
    [[nodiscard]] ipc::Semaphore Semaphore(unsigned value = 1) { return keep(ipc::Semaphore(value)); }
    [[nodiscard]] ipc::BoundedSemaphore BoundedSemaphore(unsigned value = 1) { return keep(ipc::BoundedSemaphore(value)); }
    [[nodiscard]] ipc::Event Event() { return keep(ipc::Event()); }
    template <class... Args>
    [[nodiscard]] ipc::Condition Condition(Args&&... lock) {
        return keep(ipc::Condition(std::forward<Args>(lock)...));
    }
    template <class... Args>
    [[nodiscard]] ipc::Barrier Barrier(unsigned parties, Args&&... args) {
        return keep(ipc::Barrier(parties, std::forward<Args>(args)...));
    }
    template <class T>
    [[nodiscard]] ipc::Value<T> Value(const T& initial) {
        return keep(ipc::Value<T>(initial));
    }
    template <class T, class... Args>
    [[nodiscard]] ipc::Array<T> Array(Args&&... args) {
        return keep(ipc::Array<T>(std::forward<Args>(args)...));
    }

    /// Stops the manager process and removes its heap; every proxy fails from then on. Idempotent.
    void shutdown();
    /// The manager process's pid; empty once shut down.
    [[nodiscard]] std::optional<pid_t> pid() const;

protected:
    /// Has the manager process make a copy of segment `name` its own (removed when it shuts down
    /// or dies); returns the copy's name.
    std::string adopt_segment(const std::string& name);

private:
    const std::shared_ptr<detail::ManagerHeap>& heap() const;
    template <class Object>
    Object keep(Object object) {
        (void)heap();  // ManagerError once shut down
        kept_.push_back(std::make_shared<Object>(object));
        return object;
    }

    std::shared_ptr<detail::ManagerHeap> heap_;
    std::optional<Process> process_;
    std::unique_ptr<detail::ManagerControl> control_;
    std::vector<std::shared_ptr<void>> kept_;  // the managed primitives' handles, until shutdown
};

/// Python's SharedMemoryManager: SharedMemory blocks and ShareableLists that the manager process
/// holds, removed when it shuts down (or, should it be killed, by the resource tracker). A block
/// is made here and copied by the manager process, so it starts as given; the handle returned is
/// attached to the manager's copy. Handles keep their mapping after the shutdown, as in Python.
class SharedMemoryManager : public Manager {
public:
    SharedMemoryManager() = default;
    explicit SharedMemoryManager(ManagerOptions options) : Manager(std::move(options)) {}

    /// A new block of `size` zero bytes (Python's smm.SharedMemory(size)).
    [[nodiscard]] ipc::SharedMemory SharedMemory(std::size_t size) {  // NOLINT: Python's name
        const ipc::SharedMemory made(size);
        return ipc::SharedMemory(adopt_segment(made.name()));
    }
    /// A new list holding `values` (Python's smm.ShareableList(sequence)).
    template <class T>
    [[nodiscard]] ipc::ShareableList<T> ShareableList(std::initializer_list<T> values) {  // NOLINT: Python's name
        const ipc::ShareableList<T> made(values);
        return ipc::ShareableList<T>(adopt_segment(made.shm().name()));
    }
    template <class T, class Range>
    [[nodiscard]] ipc::ShareableList<T> ShareableList(const Range& values) {  // NOLINT: Python's name
        const ipc::ShareableList<T> made(values);
        return ipc::ShareableList<T>(adopt_segment(made.shm().name()));
    }
};

}  // namespace ipc
