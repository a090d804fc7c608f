// ipc/context.hpp — Python's multiprocessing contexts: get_context("spawn") gives an object whose
// Process and Pool start children with that method, beside the program's default.
#pragma once

#include <optional>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ipc/connection.hpp"
#include "ipc/pool.hpp"
#include "ipc/process.hpp"
#include "ipc/queues.hpp"
#include "ipc/sharedctypes.hpp"
#include "ipc/synchronize.hpp"

namespace ipc {

/// What `get_context(method)` returns: `ctx.Process(target, args...)` and `ctx.Pool(n)` use the
/// context's start method whatever the program's default is. The other factories are there so
/// that code written against a context reads as in Python (`ctx.Queue<int>()`, `ctx.Lock()`);
/// queues, locks and shared values work the same under every start method.
class Context {
public:
    explicit Context(StartMethod method) noexcept : method_(method) {}

    [[nodiscard]] StartMethod get_start_method() const noexcept { return method_; }

    /// A Process started with this context's method (ProcessOptions::start_method is replaced).
    template <class F, class... Args>
        requires(!std::is_same_v<std::decay_t<F>, ProcessOptions>)
    [[nodiscard]] ipc::Process Process(F&& target, Args&&... args) const {
        return ipc::Process(ProcessOptions{.start_method = method_}, std::forward<F>(target), std::forward<Args>(args)...);
    }
    template <class F, class... Args>
    [[nodiscard]] ipc::Process Process(ProcessOptions options, F&& target, Args&&... args) const {
        options.start_method = method_;
        return ipc::Process(std::move(options), std::forward<F>(target), std::forward<Args>(args)...);
    }

    /// A Pool whose workers start with this context's method (PoolOptions::start_method is replaced).
    [[nodiscard]] ipc::Pool Pool(std::optional<int> processes = {}) const {
        return ipc::Pool(PoolOptions{.processes = processes, .start_method = method_});
    }
    [[nodiscard]] ipc::Pool Pool(PoolOptions options) const {
        options.start_method = method_;
        return ipc::Pool(std::move(options));
    }
    template <class Init, class... InitArgs>
    [[nodiscard]] ipc::Pool Pool(PoolOptions options, Init initializer, std::tuple<InitArgs...> initargs = {}) const {
        options.start_method = method_;
        return ipc::Pool(std::move(options), initializer, std::move(initargs));
    }

    template <class... A>
    [[nodiscard]] static std::pair<Connection, Connection> Pipe(A&&... a) {
        return ipc::Pipe(std::forward<A>(a)...);
    }
    template <class T, class... A>
    [[nodiscard]] static ipc::Queue<T> Queue(A&&... a) {
        return ipc::Queue<T>(std::forward<A>(a)...);
    }
    template <class T, class... A>
    [[nodiscard]] static ipc::SimpleQueue<T> SimpleQueue(A&&... a) {
        return ipc::SimpleQueue<T>(std::forward<A>(a)...);
    }
    template <class T, class... A>
    [[nodiscard]] static ipc::JoinableQueue<T> JoinableQueue(A&&... a) {
        return ipc::JoinableQueue<T>(std::forward<A>(a)...);
    }
    template <class... A>
    [[nodiscard]] static ipc::Lock Lock(A&&... a) {
        return ipc::Lock(std::forward<A>(a)...);
    }
    template <class... A>
    [[nodiscard]] static ipc::RLock RLock(A&&... a) {
        return ipc::RLock(std::forward<A>(a)...);
    }
    template <class... A>
    [[nodiscard]] static ipc::Semaphore Semaphore(A&&... a) {
        return ipc::Semaphore(std::forward<A>(a)...);
    }
    template <class... A>
    [[nodiscard]] static ipc::BoundedSemaphore BoundedSemaphore(A&&... a) {
        return ipc::BoundedSemaphore(std::forward<A>(a)...);
    }
    template <class... A>
    [[nodiscard]] static ipc::Event Event(A&&... a) {
        return ipc::Event(std::forward<A>(a)...);
    }
    template <class... A>
    [[nodiscard]] static ipc::Condition Condition(A&&... a) {
        return ipc::Condition(std::forward<A>(a)...);
    }
    template <class... A>
    [[nodiscard]] static ipc::Barrier Barrier(A&&... a) {
        return ipc::Barrier(std::forward<A>(a)...);
    }
    template <class T, class... A>
    [[nodiscard]] static ipc::Value<T> Value(A&&... a) {
        return ipc::Value<T>(std::forward<A>(a)...);
    }
    template <class T, class... A>
    [[nodiscard]] static ipc::RawValue<T> RawValue(A&&... a) {
        return ipc::RawValue<T>(std::forward<A>(a)...);
    }
    template <class T, class... A>
    [[nodiscard]] static ipc::Array<T> Array(A&&... a) {
        return ipc::Array<T>(std::forward<A>(a)...);
    }
    template <class T, class... A>
    [[nodiscard]] static ipc::RawArray<T> RawArray(A&&... a) {
        return ipc::RawArray<T>(std::forward<A>(a)...);
    }

    [[nodiscard]] static int cpu_count() { return ipc::cpu_count(); }
    [[nodiscard]] static std::vector<ipc::Process> active_children() { return ipc::active_children(); }

private:
    StartMethod method_;
};

/// A context for `method` (Python's get_context("spawn")); without one, the program's default.
[[nodiscard]] inline Context get_context(std::optional<StartMethod> method = {}) {
    return Context(method.value_or(get_start_method()));
}
/// The same by name: "fork", "spawn" or "forkserver"; anything else is a ValueError.
[[nodiscard]] inline Context get_context(std::string_view method) { return Context(parse_start_method(method)); }

}  // namespace ipc
