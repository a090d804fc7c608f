// ipc/detail/manager_calls.hpp — what BaseManager (managers.hpp) is made of: a registered type as
// the server keeps it (its factory and its exposed methods, each a plain function that decodes the
// arguments, calls, and encodes the result), the reference a Proxy holds, and the request a proxy
// call sends to the server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ipc/codec.hpp"
#include "ipc/detail/code_ref.hpp"
#include "ipc/detail/target.hpp"
#include "ipc/detail/type_name.hpp"

namespace ipc::detail {

/// How the compiler spells a member function pointer given as a template argument ("&Counter::add").
/// A typed proxy call sends its hash, so the server finds the method without a name being written
/// twice: stable across processes and programs built from the same source, as type tags are.
template <auto Member>
constexpr std::string_view member_name() noexcept {
    constexpr auto name = template_argument(__PRETTY_FUNCTION__, "Member = ");
    return name;
}
/// The member's spelling and its type together: the spelling of a member template's instance
/// leaves out its template arguments (`&Counter::get` for get<int> and get<long>), its type does not.
template <auto Member>
inline constexpr std::uint64_t member_key = fnv1a(member_name<Member>()) * 0x100000001b3ULL ^ type_tag<decltype(Member)>;

/// The parts of a member function's type: its class, result and parameters.
template <class M>
struct MemberTraits;
#define IPC_MEMBER_TRAITS(QUALIFIERS)                                 \
    template <class R, class C, class... P>                           \
    struct MemberTraits<R (C::*)(P...) QUALIFIERS> {                  \
        using object = C;                                             \
        using result = R;                                             \
        using arguments = std::tuple<std::decay_t<P>...>;             \
    };
IPC_MEMBER_TRAITS()
IPC_MEMBER_TRAITS(const)
IPC_MEMBER_TRAITS(noexcept)
IPC_MEMBER_TRAITS(const noexcept)
#undef IPC_MEMBER_TRAITS

/// The parameters and result of a plain function or of a lambda's call operator.
template <class F>
struct CallableTraits : CallableTraits<decltype(&F::operator())> {};
template <class R, class... P>
struct CallableTraits<R (*)(P...)> {
    using result = R;
    using arguments = std::tuple<std::decay_t<P>...>;
};
template <class R, class... P>
struct CallableTraits<R (*)(P...) noexcept> : CallableTraits<R (*)(P...)> {};
template <class R, class C, class... P>
struct CallableTraits<R (C::*)(P...) const> : CallableTraits<R (*)(P...)> {};
template <class R, class C, class... P>
struct CallableTraits<R (C::*)(P...) const noexcept> : CallableTraits<R (*)(P...)> {};

template <class T>
struct SharedPointee {
    using type = void;
};
template <class T>
struct SharedPointee<std::shared_ptr<T>> {
    using type = T;
};
/// A method that returns a std::shared_ptr<U> hands out a new served object (Python's
/// method_to_typeid): the caller gets a Proxy<U>, not a copy.
template <class R>
inline constexpr bool returns_served_v = !std::is_void_v<typename SharedPointee<std::decay_t<R>>::type>;

/// An object the server holds, type-erased.
using ServedObject = std::shared_ptr<void>;

/// What one method call made in the server: the encoded result, or a new object to serve.
struct MethodResult {
    std::vector<std::byte> encoded;
    ServedObject object;
    std::uint64_t object_tag = 0;  // the new object's C++ type
};

using MethodInvoker = MethodResult (*)(void* object, std::span<const std::byte> arguments);
using ObjectFactory = ServedObject (*)(const void* callable, std::span<const std::byte> arguments);

/// One exposed method: its name (Python's), the key of its member pointer, how to call it, and for
/// a method that hands out objects the typeid they are served as (empty: found by their C++ type).
struct ExposedMethod {
    std::string name;
    std::uint64_t key = 0;
    MethodInvoker invoke = nullptr;
    std::string result_typeid;
};

/// A registered typeid (Python's BaseManager.register): how the server makes its objects and what
/// their proxies may call. Crosses to a spawned manager process as code references.
struct TypeEntry {
    std::string type_id;
    std::uint64_t type_tag = 0;
    std::string type_name;
    ObjectFactory factory = nullptr;
    const void* callable = nullptr;  // a function-pointer callable (null for a constructor or lambda)
    bool concurrent = false;         // calls may run side by side (else one at a time per object)
    std::vector<ExposedMethod> methods;
};

/// Every registered typeid of a manager, as its server (and a spawned manager process) gets them.
struct TypeTable {
    std::deque<TypeEntry> types;  // a deque: a TypeRegistration keeps its entry while others are added

    [[nodiscard]] const TypeEntry* find(std::string_view type_id) const noexcept;
    /// The one typeid serving C++ type `tag`; null when none or several do.
    [[nodiscard]] const TypeEntry* find_by_tag(std::uint64_t tag) const noexcept;
    void ipc_save(codec::Writer& writer) const;
    static TypeTable ipc_load(codec::Reader& reader);
};

template <class T, class Result>
ServedObject serve_result(Result&& result) {
    using R = std::remove_cvref_t<Result>;
    if constexpr (std::is_same_v<R, std::shared_ptr<T>>)
        return std::forward<Result>(result);
    else if constexpr (std::is_pointer_v<R>)
        return ServedObject(ServedObject(), static_cast<void*>(result));  // not owned: the callable's object
    else if constexpr (std::is_lvalue_reference_v<Result> && !std::is_const_v<std::remove_reference_t<Result>>)
        return ServedObject(ServedObject(), static_cast<void*>(std::addressof(result)));
    else
        return std::make_shared<T>(std::forward<Result>(result));
}

/// Makes a T from the arguments of create(): its constructor's.
template <class T, class... Args>
ServedObject construct_object(const void*, std::span<const std::byte> arguments) {
    auto args = decode<std::tuple<Args...>>(arguments);
    return std::apply([](auto&... arg) { return std::make_shared<T>(std::move(arg)...); }, args);
}

/// Calls a registered callable with the arguments of create() (Python's register(callable=...)).
template <class T, class F>
ServedObject call_factory(const void* callable, std::span<const std::byte> arguments) {
    using Arguments = typename CallableTraits<F>::arguments;
    auto args = decode<Arguments>(arguments);
    F function = [&] {
        if constexpr (is_function_pointer_v<F>) return reinterpret_cast<F>(const_cast<void*>(callable));
        else return F{};
    }();
    if constexpr (std::is_lvalue_reference_v<typename CallableTraits<F>::result>) {
        auto& object = std::apply(function, args);
        return serve_result<T>(object);
    } else {
        return serve_result<T>(std::apply(function, std::move(args)));
    }
}

/// Calls `Member` on an object of its class with decoded arguments and encodes what it returns.
template <auto Member>
MethodResult invoke_member(void* object, std::span<const std::byte> arguments) {
    using Traits = MemberTraits<decltype(Member)>;
    using Result = typename Traits::result;
    auto args = decode<typename Traits::arguments>(arguments);
    auto& self = *static_cast<typename Traits::object*>(object);
    auto call = [&]() -> decltype(auto) {
        return std::apply([&](auto&... a) -> decltype(auto) { return (self.*Member)(std::move(a)...); }, args);
    };
    MethodResult out;
    if constexpr (std::is_void_v<Result>) {
        call();
    } else if constexpr (returns_served_v<Result>) {
        using Served = typename SharedPointee<std::decay_t<Result>>::type;
        out.object = call();
        out.object_tag = codec::registered_tag<Served>();
    } else {
        out.encoded = encode<std::decay_t<Result>>(call());
    }
    return out;
}

/// What a Proxy refers to: an object of the server at `address`, and what it is.
struct ObjectRef {
    std::string address;
    std::uint64_t id = 0;
    std::string type_id;
    std::uint64_t type_tag = 0;

    void save(codec::Writer& writer) const;
    /// CodecError when the reference is to another C++ type than `expected_tag`.
    static ObjectRef load(codec::Reader& reader, std::uint64_t expected_tag, std::string_view expected_name);
    /// "Counter object 3 of the manager at '…'", for messages.
    [[nodiscard]] std::string describe() const;
};

/// What a proxy call got back: the encoded result, or a new object the server hands out.
struct CallReply {
    std::vector<std::byte> encoded;
    std::optional<ObjectRef> object;
};

/// Asks the server at `address` to make an object of `type_id` from `arguments` (encoded).
ObjectRef manager_create(const std::string& address, std::string_view type_id, std::span<const std::byte> arguments);
/// Calls a method of `ref` by its member key (or by `name` when the key is 0); an exception the
/// method threw is rethrown here as its own type (std:: and ipc:: ones; others as RemoteError).
CallReply manager_call(const ObjectRef& ref, std::uint64_t key, std::string_view name, std::span<const std::byte> arguments);
/// Checks a created or handed-out object's C++ type against the proxy's.
void check_served_type(const ObjectRef& ref, std::uint64_t expected_tag, std::string_view expected_name);

}  // namespace ipc::detail
