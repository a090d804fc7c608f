// ipc/detail/pool_call.hpp — how a Pool call crosses to a worker: the parent encodes the function
// and a chunk of arguments; the worker finds the matching invoker by code address and runs it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ipc/codec.hpp"
#include "ipc/detail/target.hpp"

namespace ipc {
/// What a function returning void gives back from a pool call (Python's None).
struct None {
    friend bool operator==(None, None) = default;
};
}  // namespace ipc

namespace ipc::detail {

template <class R>
using stored_result_t = std::conditional_t<std::is_void_v<R>, None, R>;

/// An exception thrown in a worker, as it crosses back: where in the chunk, its type and what().
struct RemoteFailure {
    std::uint64_t index = 0;
    std::string type;
    std::string message;

    template <class Archive>
    void serialize(Archive& archive) {
        archive(index, type, message);
    }
};

/// Describes the exception being handled (call inside a catch block).
RemoteFailure describe_current_exception(std::size_t index);
/// The exception to rethrow in the parent: standard and ipc exception types as themselves, anything
/// else as an ipc::RemoteError that names the original type.
std::exception_ptr remote_exception(const RemoteFailure& failure);

/// How each argument is passed: `single` calls fn(arg) (map), `star` calls std::apply(fn, arg)
/// (starmap, apply).
enum class CallStyle { single, star };

template <class F, class Arg, CallStyle style>
struct CallTraits;

template <class F, class Arg>
struct CallTraits<F, Arg, CallStyle::single> {
    using result = std::invoke_result_t<F&, Arg&&>;
    static decltype(auto) call(F& fn, Arg&& arg) { return std::invoke(fn, std::move(arg)); }
};

template <class F, class Arg>
struct CallTraits<F, Arg, CallStyle::star> {
    using result = decltype(std::apply(std::declval<F&>(), std::declval<Arg&&>()));
    static decltype(auto) call(F& fn, Arg&& arg) { return std::apply(fn, std::move(arg)); }
};

template <class F, class Arg, CallStyle style>
using call_result_t = typename CallTraits<F, Arg, style>::result;

/// Runs one chunk in a worker: rebuilds the function, decodes the arguments, calls the function on
/// each and encodes `std::vector<stored_result_t<R>>` then `std::optional<RemoteFailure>`, which it
/// also returns. The first exception stops the chunk, so the results before it still reach the
/// parent (imap yields them).
using ChunkInvoker = std::optional<RemoteFailure> (*)(const void* function, codec::Reader& task, codec::Writer& result);

/// A chunk's arguments: raw elements in one copy, others one by one. Not std::vector's cereal form,
/// which cannot hold empty elements such as the std::tuple<> of a call without arguments.
template <class Arg>
void save_arguments(codec::Writer& writer, std::span<const Arg> args) {
    const std::uint64_t count = args.size();
    writer.write(&count, sizeof count);
    if constexpr (codec::Raw<Arg>) {
        writer.write(args.data(), args.size_bytes());
    } else {
        for (const auto& arg : args) codec::save(writer, arg);
    }
}

template <class Arg>
std::vector<Arg> load_arguments(codec::Reader& reader) {
    std::uint64_t count = 0;
    reader.read(&count, sizeof count);
    // Elements may be empty, so the bytes left do not bound the count; a chunk never holds more.
    constexpr std::uint64_t max_chunk = std::uint64_t{1} << 32;
    if (count > max_chunk || (codec::Raw<Arg> && count * sizeof(Arg) > reader.remaining().size()))
        throw CodecError("Pool: a task claims " + std::to_string(count) + " arguments; the message is corrupt");
    std::vector<Arg> args;
    args.reserve(static_cast<std::size_t>(count));
    if constexpr (codec::Raw<Arg>) {
        args.resize(static_cast<std::size_t>(count));
        reader.read(args.data(), args.size() * sizeof(Arg));
    } else {
        for (std::uint64_t i = 0; i < count; ++i) args.push_back(codec::load<Arg>(reader));
    }
    return args;
}

template <class F, class Arg, CallStyle style>
std::optional<RemoteFailure> invoke_chunk(const void* function, codec::Reader& task, codec::Writer& out) {
    using Traits = CallTraits<F, Arg, style>;
    using Stored = stored_result_t<typename Traits::result>;
    std::vector<Stored> results;
    std::optional<RemoteFailure> failure;
    try {
        F fn = rebuild_callable<F>(function, task);
        auto args = load_arguments<Arg>(task);
        results.reserve(args.size());
        for (auto& arg : args) {
            try {
                if constexpr (std::is_void_v<typename Traits::result>) {
                    Traits::call(fn, std::move(arg));
                    results.emplace_back();
                } else {
                    results.push_back(Traits::call(fn, std::move(arg)));
                }
            } catch (...) {
                failure = describe_current_exception(results.size());
                break;
            }
        }
    } catch (...) {
        failure = describe_current_exception(results.size());
    }
    codec::save(out, results);
    codec::save(out, failure);
    return failure;
}

/// The parts of a task message that say what to run, resolved once per process and cached.
struct CallCode {
    CodeRef invoker;
    std::optional<CodeRef> function;

    template <class Archive>
    void serialize(Archive& archive) {
        archive(invoker, function);
    }
};

/// The invoker's and the function's addresses in this process (cached: resolving reads the loader's
/// module list); ProcessError when this program's code differs from the parent's.
std::pair<ChunkInvoker, const void*> resolve_call(const CallCode& code);

/// Encodes the call of `fn` on `args` for a worker, without the task header.
template <class F, class Arg, CallStyle style>
void encode_call(codec::Writer& writer, const F& fn, std::span<const Arg> args) {
    static const CodeRef invoker = locate_code(reinterpret_cast<const void*>(&invoke_chunk<F, Arg, style>));
    CallCode code{invoker, std::nullopt};
    if constexpr (is_function_pointer_v<F>) {
        // The same function is sent chunk after chunk: remember the last one located.
        thread_local const void* last_function = nullptr;
        thread_local CodeRef last_ref;
        const auto* address = reinterpret_cast<const void*>(fn);
        if (address != last_function) {
            last_ref = locate_code(address);
            last_function = address;
        }
        code.function = last_ref;
    }
    codec::save(writer, code);
    if constexpr (is_serializable_callable_v<F>) codec::save(writer, fn);
    save_arguments(writer, args);
}

/// Why a function cannot be used by a Pool, checked at compile time with these messages.
template <class F, class Arg, CallStyle style>
constexpr void check_pool_call() {
    static_assert(target_can_spawn_v<F>,
                  "ipc::Pool: workers receive the function as a message, so it must be a plain function, a "
                  "captureless lambda, or a function object with cereal serialize() (not a capturing lambda)");
    static_assert(codec::Encodable<Arg>,
                  "ipc::Pool: the argument type cannot be encoded by ipc::codec; make it trivially copyable "
                  "without pointers or give it cereal serialize()");
    static_assert(codec::Encodable<stored_result_t<call_result_t<F, Arg, style>>>,
                  "ipc::Pool: the function's result type cannot be encoded by ipc::codec; make it trivially "
                  "copyable without pointers or give it cereal serialize()");
}

}  // namespace ipc::detail
