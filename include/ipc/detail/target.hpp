// ipc/detail/target.hpp — a Process's target and arguments, runnable after fork or rebuilt after spawn.
// Under spawn the child finds code by its module and offset in the same executable: no registry.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "ipc/codec.hpp"
#include "ipc/detail/code_ref.hpp"

namespace ipc::detail {

class Runnable {
public:
    virtual ~Runnable() = default;
    /// Runs the target once and maps its result to an exit code.
    virtual int run() = 0;
};

/// Rebuilds a target in a spawned child from the function address (for function pointers) and the
/// encoded state and arguments.
using SpawnFactory = std::unique_ptr<Runnable> (*)(const void* function, codec::Reader& encoded);

class Target : public Runnable {
public:
    /// Empty when the target and its arguments can cross a spawn; otherwise says which one cannot.
    [[nodiscard]] virtual std::string spawn_problem() const = 0;
    virtual void save_for_spawn(codec::Writer& writer) const = 0;
    [[nodiscard]] virtual SpawnFactory spawn_factory() const = 0;
    /// The code address of a function-pointer target; nullptr for function objects.
    [[nodiscard]] virtual const void* spawn_function() const = 0;
    /// Under fork, tells the arguments that hold a channel end that the child holds it too: in the
    /// parent right after fork() (`child` is its pid), then in the child (`in_child`).
    virtual void forked(bool in_child, std::uint32_t child) = 0;
};

/// A handle that a forked child holds only when it is passed as an argument (a Connection end).
template <class T>
concept ForkHeld = requires(T& handle, bool in_child, std::uint32_t child) { handle.ipc_forked(in_child, child); };

template <class F>
inline constexpr bool is_function_pointer_v = std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>;

/// A captureless lambda or an empty function object: the child default-constructs its own.
template <class F>
inline constexpr bool is_stateless_callable_v =
    std::is_class_v<F> && std::is_empty_v<F> && std::is_default_constructible_v<F>;

/// A function object with state crosses only when it says how (cereal functions or an ipc handle);
/// raw bytes are not enough, since a lambda's captures may be addresses.
template <class F>
inline constexpr bool is_serializable_callable_v =
    std::is_class_v<F> && !std::is_empty_v<F> && (codec::CerealSerializable<F> || codec::Handle<F>);

template <class F>
inline constexpr bool target_can_spawn_v =
    is_function_pointer_v<F> || is_stateless_callable_v<F> || is_serializable_callable_v<F>;

/// The callable a spawned child or a pool worker runs: from its code address, default-constructed,
/// or decoded from its saved state.
template <class F>
F rebuild_callable(const void* function, codec::Reader& encoded) {
    if constexpr (is_function_pointer_v<F>)
        return reinterpret_cast<F>(const_cast<void*>(function));
    else if constexpr (is_stateless_callable_v<F>)
        return F{};
    else
        return codec::load<F>(encoded);
}

template <class Result>
int exit_code_of(Result&& result) {
    if constexpr (std::is_integral_v<std::remove_cvref_t<Result>> && !std::is_same_v<std::remove_cvref_t<Result>, bool>)
        return static_cast<int>(result);
    else
        return 0;
}

template <class F, class... Args>
class TargetBox final : public Target {
public:
    TargetBox(F target, std::tuple<Args...> args) : target_(std::move(target)), args_(std::move(args)) {}

    int run() override {
        return std::apply(
            [this](Args&... args) {
                using Result = std::invoke_result_t<F&, Args&&...>;
                if constexpr (std::is_void_v<Result>) {
                    std::invoke(target_, std::move(args)...);
                    return 0;
                } else {
                    return exit_code_of(std::invoke(target_, std::move(args)...));
                }
            },
            args_);
    }

    [[nodiscard]] std::string spawn_problem() const override {
        if constexpr (!target_can_spawn_v<F>) {
            return "the target (" + std::string(type_name<F>()) +
                   ") carries state that ipc cannot send to a new program (a lambda capture?); pass a plain "
                   "function, a captureless lambda, or a function object with cereal serialize()";
        } else {
            std::string problem;
            std::size_t index = 0;
            ((++index, problem.empty() && !codec::Encodable<Args>
                           ? void(problem = "argument " + std::to_string(index) + " (" +
                                            std::string(type_name<Args>()) +
                                            ") cannot be encoded by ipc::codec; make it trivially copyable without "
                                            "pointers or give it cereal serialize()")
                           : void()),
             ...);
            return problem;
        }
    }

    void save_for_spawn(codec::Writer& writer) const override {
        if constexpr (can_spawn) {
            if constexpr (is_serializable_callable_v<F>) codec::save(writer, target_);
            std::apply([&writer](const Args&... args) { (codec::save(writer, args), ...); }, args_);
        }
    }

    [[nodiscard]] SpawnFactory spawn_factory() const override {
        if constexpr (can_spawn)
            return &TargetBox::rebuild;
        else
            return nullptr;
    }

    [[nodiscard]] const void* spawn_function() const override {
        if constexpr (is_function_pointer_v<F>)
            return reinterpret_cast<const void*>(target_);
        else
            return nullptr;
    }

    void forked(bool in_child, std::uint32_t child) override {
        std::apply(
            [&](Args&... args) {
                [[maybe_unused]] auto visit = [&](auto& arg) {
                    if constexpr (ForkHeld<std::remove_cvref_t<decltype(arg)>>) arg.ipc_forked(in_child, child);
                };
                (visit(args), ...);
            },
            args_);
    }

private:
    static constexpr bool can_spawn = target_can_spawn_v<F> && (codec::Encodable<Args> && ...);

    static std::unique_ptr<Runnable> rebuild(const void* function, codec::Reader& encoded) {
        if constexpr (can_spawn) {
            F target = rebuild_callable<F>(function, encoded);
            // A braced list evaluates left to right, so arguments are read in the order they were saved.
            std::tuple<Args...> args{codec::load<Args>(encoded)...};
            return std::make_unique<TargetBox>(std::move(target), std::move(args));
        } else {
            return nullptr;
        }
    }

    F target_;
    std::tuple<Args...> args_;
};

/// Arguments are stored by value; a C string or string_view becomes std::string, which owns its
/// characters and so can cross a spawn.
template <class A>
using stored_arg_t = std::conditional_t<std::is_same_v<std::decay_t<A>, const char*> || std::is_same_v<std::decay_t<A>, char*> ||
                                            std::is_same_v<std::decay_t<A>, std::string_view>,
                                        std::string, std::decay_t<A>>;

template <class F, class... Args>
std::unique_ptr<Target> make_target(F&& target, Args&&... args) {
    using Fn = std::decay_t<F>;
    if constexpr (std::is_invocable_v<Fn&, stored_arg_t<Args>&&...>) {
        return std::make_unique<TargetBox<Fn, stored_arg_t<Args>...>>(
            std::forward<F>(target), std::tuple<stored_arg_t<Args>...>(std::forward<Args>(args)...));
    } else {
        static_assert(std::is_invocable_v<Fn&, std::decay_t<Args>&&...>,
                      "ipc::Process: the target cannot be called with these arguments");
        return std::make_unique<TargetBox<Fn, std::decay_t<Args>...>>(
            std::forward<F>(target), std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...));
    }
}

}  // namespace ipc::detail
