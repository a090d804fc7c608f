// ipc/asio.hpp — Boost.Asio integration: receive from and send to a Connection, and get from a Queue,
// inside an io_context (callbacks, use_future, C++20 coroutines), with no extra thread. Include it yourself.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/system_error.hpp>

#include "ipc/connection.hpp"
#include "ipc/queues.hpp"

namespace ipc::detail {

/// What ipc/asio.hpp needs from the handles: calls that never block, and their descriptors.
struct AsyncAccess {
    static std::optional<std::span<const std::byte>> try_recv(Connection& connection) {
        return connection.receive_general(Connection::no_limit, false);
    }
    static bool try_send(Connection& connection, std::span<const std::byte> message) {
        return connection.send_general(MessageParts{message}, false);
    }
    static void pass_on_room(Connection& connection) { connection.pass_on_room(); }
    static int watch(Connection& connection, bool room) { return connection.watch(room); }
    static void unwatch(Connection& connection, bool room) noexcept { connection.unwatch(room); }
    template <class T>
    static QueueCore& core(Queue<T>& queue) {
        return queue.core("async_get");
    }
    template <class T>
    static Queue<T>& queue(SimpleQueue<T>& queue) {
        return queue.queue_;
    }
};

}  // namespace ipc::detail

namespace ipc::asio {

/// How often an operation that waits looks again although its descriptor stayed quiet: a peer
/// killed with SIGKILL cannot signal, so its EOFError (or BrokenPipeError) shows within this, as
/// in ipc::wait().
inline constexpr std::chrono::milliseconds recheck_interval{200};
/// The same for a handle without a readiness descriptor (a Queue that came inside a message).
inline constexpr std::chrono::milliseconds recheck_interval_without_descriptor{10};

namespace detail {

/// An operation that had to wait, as its ReadinessWatch sees it: the ReadinessWatch wakes it by cancelling its timer.
struct Waiter {
    explicit Waiter(const boost::asio::any_io_executor& executor) : timer(executor) {}
    boost::asio::steady_timer timer;
    bool waiting = false;  // its timer is armed (guarded by the ReadinessWatch's mutex)
};

/// One readiness descriptor of a Connection or Queue — our own duplicate of its eventfd, opened
/// when an operation first has to wait — and the operations that use it. One read at a time
/// drains the eventfd and wakes every waiting operation, which tries again. While it is open,
/// the handle's other side signals the eventfd (`watch`); it stops when the ReadinessWatch goes.
class ReadinessWatch : public std::enable_shared_from_this<ReadinessWatch> {
public:
    ReadinessWatch(boost::asio::any_io_executor executor, std::function<int()> watch, std::function<void()> unwatch)
        : executor_(std::move(executor)), descriptor_(executor_), watch_(std::move(watch)), unwatch_(std::move(unwatch)) {}
    ~ReadinessWatch() {
        if (watching_) unwatch_();
    }
    ReadinessWatch(const ReadinessWatch&) = delete;
    ReadinessWatch& operator=(const ReadinessWatch&) = delete;

    [[nodiscard]] const boost::asio::any_io_executor& executor() const noexcept { return executor_; }

    /// Operations remember this when they start; cancel() moves it on.
    [[nodiscard]] std::uint64_t generation() {
        std::lock_guard lock(mutex_);
        return generation_;
    }

    /// Starts an attempt: false when the operation was cancelled since it started.
    bool begin_attempt(std::uint64_t generation, Waiter* waiter) {
        std::lock_guard lock(mutex_);
        if (waiter) waiter->waiting = false;
        return generation == generation_;
    }

    /// Registers the descriptor with the executor the first time an operation must wait.
    void open() {
        std::lock_guard lock(mutex_);
        if (opened_) return;
        if (const int fd = watch_(); fd >= 0) {
            boost::system::error_code error;
            const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
            if (copy >= 0) descriptor_.assign(copy, error);
            if (copy < 0 || error) {
                const int failure = copy < 0 ? errno : error.value();
                if (copy >= 0) ::close(copy);
                unwatch_();  // the next operation tries again from the start
                throw_os_error("register with Boost.Asio", "a readiness descriptor", failure);
            }
            watching_ = true;
        }
        opened_ = true;
    }

    /// Puts the operation to sleep: `arm` hands it to its timer, which a signal cancels early.
    template <class Arm>
    void wait(const std::shared_ptr<Waiter>& waiter, Arm&& arm) {
        std::lock_guard lock(mutex_);
        if (std::find_if(waiters_.begin(), waiters_.end(), [&](const auto& w) { return w.lock() == waiter; }) ==
            waiters_.end()) {
            std::erase_if(waiters_, [](const std::weak_ptr<Waiter>& w) { return w.expired(); });
            waiters_.push_back(waiter);
        }
        waiter->waiting = true;
        waiter->timer.expires_after(descriptor_.is_open() ? recheck_interval : recheck_interval_without_descriptor);
        std::forward<Arm>(arm)();
        start_read();
    }

    /// An operation that had waited is done. When no other one waits, the read on the descriptor
    /// ends too: it would keep io_context::run() from returning.
    void leave(Waiter& waiter) {
        std::lock_guard lock(mutex_);
        waiter.waiting = false;
        if (reading_ && !anyone_waiting()) {
            boost::system::error_code ignored;
            descriptor_.cancel(ignored);
        }
    }

    /// Every operation started here ends with operation_aborted (one that already has its result
    /// delivers it).
    void cancel() {
        std::lock_guard lock(mutex_);
        ++generation_;
        for (const auto& weak : waiters_)
            if (const auto waiter = weak.lock()) waiter->timer.cancel();
    }

    /// cancel(), and the read on the descriptor ends too (the wrapper is going away).
    void shutdown() {
        cancel();
        std::lock_guard lock(mutex_);
        closed_ = true;
        boost::system::error_code ignored;
        descriptor_.cancel(ignored);
    }

private:
    // All below with mutex_ held.
    [[nodiscard]] bool anyone_waiting() const {
        return std::any_of(waiters_.begin(), waiters_.end(), [](const std::weak_ptr<Waiter>& weak) {
            const auto waiter = weak.lock();
            return waiter && waiter->waiting;
        });
    }

    void start_read() {
        if (!descriptor_.is_open() || reading_ || closed_) return;
        reading_ = true;
        descriptor_.async_read_some(boost::asio::buffer(&count_, sizeof count_),
                                    [self = shared_from_this()](const boost::system::error_code& error, std::size_t) {
                                        self->on_readable(error);
                                    });
    }

    void on_readable(const boost::system::error_code& error) {
        std::lock_guard lock(mutex_);
        reading_ = false;
        if (error) {
            // Cancelled by leave() while another operation began to wait, or the read failed (then
            // the waiters still look every recheck_interval).
            if (error == boost::asio::error::operation_aborted && anyone_waiting()) start_read();
            return;
        }
        bool woke = false;
        for (const auto& weak : waiters_)
            if (const auto waiter = weak.lock(); waiter && waiter->waiting) {
                waiter->waiting = false;
                waiter->timer.cancel();
                woke = true;
            }
        // A signal nobody here waited for may be meant for another consumer (another process with
        // its own copy of the eventfd, or an attempt of ours in flight): put it back.
        if (!woke) {
            const std::uint64_t one = 1;
            (void)!::write(descriptor_.native_handle(), &one, sizeof one);
        }
    }

    boost::asio::any_io_executor executor_;
    boost::asio::posix::stream_descriptor descriptor_;
    std::function<int()> watch_;
    std::function<void()> unwatch_;
    std::mutex mutex_;
    std::vector<std::weak_ptr<Waiter>> waiters_;
    std::uint64_t count_ = 0;
    std::uint64_t generation_ = 0;
    bool opened_ = false;
    bool watching_ = false;
    bool reading_ = false;
    bool closed_ = false;
};

/// A wrapper's hold on its watches: cancels what is outstanding on them when the wrapper is
/// destroyed or assigned over, and ends their reads.
class ReadinessWatchers {
public:
    explicit ReadinessWatchers(std::vector<std::shared_ptr<ReadinessWatch>> watches) : watches_(std::move(watches)) {}
    ReadinessWatchers(ReadinessWatchers&& other) noexcept : watches_(std::exchange(other.watches_, {})) {}
    ReadinessWatchers& operator=(ReadinessWatchers&& other) noexcept {
        if (this != &other) {
            shutdown();
            watches_ = std::exchange(other.watches_, {});
        }
        return *this;
    }
    ~ReadinessWatchers() { shutdown(); }

    void cancel() {
        for (const auto& watch : watches_) watch->cancel();
    }

private:
    void shutdown() noexcept {
        for (const auto& watch : watches_) watch->shutdown();
    }
    std::vector<std::shared_ptr<ReadinessWatch>> watches_;
};

inline std::exception_ptr aborted() {
    return std::make_exception_ptr(boost::system::system_error(boost::asio::error::operation_aborted));
}

/// The loop every operation runs: try without blocking; when that would block, sleep until the
/// descriptor signals (or recheck_interval passes) and try again. Attempts run on the wrapper's
/// executor (not on use_future's thread pool, say), and the result is dispatched to the handler's
/// executor — at once when that is the same, so nothing is taken from a ring for a handler that
/// will never run. `Result` is std::monostate for a send.
template <class Result, class Attempt>
class Operation {
public:
    Operation(std::shared_ptr<ReadinessWatch> watch, Attempt attempt, std::shared_ptr<void> keep_alive)
        : watch_(std::move(watch)), attempt_(std::move(attempt)), keep_alive_(std::move(keep_alive)) {}

    template <class Self>
    void operator()(Self& self, boost::system::error_code = {}) {
        if (!started_) {
            // The initiating call: a handler must not run from inside it, so attempt in a step.
            started_ = true;
            generation_ = watch_->generation();
            const auto executor = watch_->executor();
            boost::asio::post(boost::asio::bind_executor(executor, std::move(self)));
            return;
        }
        if (!watch_->begin_attempt(generation_, waiter_.get())) return complete(self, aborted(), Result{});
        try {
            if (auto result = attempt_(waiter_ != nullptr)) return complete(self, nullptr, std::move(*result));
            watch_->open();
            if (!waiter_) waiter_ = std::make_shared<Waiter>(watch_->executor());
        } catch (...) {
            return complete(self, std::current_exception(), Result{});
        }
        // `self` (with this object) moves into the timer's handler: use copies from here on.
        const auto watch = watch_;
        const auto waiter = waiter_;
        watch->wait(waiter, [&] { waiter->timer.async_wait(boost::asio::bind_executor(watch->executor(), std::move(self))); });
    }

private:
    template <class Self>
    void complete(Self& self, std::exception_ptr error, Result result) {
        if (waiter_) watch_->leave(*waiter_);
        const auto executor = self.get_executor();  // the handler's, or the wrapper's if it has none
        boost::asio::dispatch(executor, [self = std::move(self), error, result = std::move(result)]() mutable {
            if constexpr (std::is_same_v<Result, std::monostate>)
                self.complete(error);
            else
                self.complete(error, std::move(result));
        });
    }

    std::shared_ptr<ReadinessWatch> watch_;
    Attempt attempt_;
    std::shared_ptr<void> keep_alive_;  // a wrapper made for this operation alone (the free functions)
    std::shared_ptr<Waiter> waiter_;    // made when the operation first has to wait
    std::uint64_t generation_ = 0;
    bool started_ = false;
};

template <class Result, class Signature, class Token, class Attempt>
auto start(std::shared_ptr<ReadinessWatch> watch, Attempt attempt, Token&& token, std::shared_ptr<void> keep_alive) {
    const auto executor = watch->executor();
    return boost::asio::async_compose<Token, Signature>(
        Operation<Result, Attempt>(std::move(watch), std::move(attempt), std::move(keep_alive)), token, executor);
}

template <class ExecutorOrContext>
boost::asio::any_io_executor executor_of(ExecutorOrContext& target) {
    if constexpr (std::is_convertible_v<ExecutorOrContext&, boost::asio::execution_context&>)
        return target.get_executor();
    else
        return target;
}

}  // namespace detail

/// A Connection served by an io_context: async_recv, async_send. Handlers get a std::exception_ptr
/// first — null on success, else EOFError, BrokenPipeError, CodecError … or boost::system::system_error
/// with operation_aborted after cancel() — so use_awaitable rethrows in the coroutine and use_future
/// in future::get(). As with Asio's own I/O objects, use it from one thread (or strand) at a time
/// and destroy it before its io_context; destroying it cancels what is outstanding.
/// A TCP Connection (ipc/listener.hpp) has no readiness signal apart from its socket, whose bytes
/// are the messages: its operations look again every recheck_interval_without_descriptor, and a
/// send whose first bytes went out finishes its frame before it returns.
class AsyncConnection {
public:
    using executor_type = boost::asio::any_io_executor;

    AsyncConnection(const executor_type& executor, Connection connection)
        : state_(std::make_shared<State>(executor, std::move(connection))), owner_({state_->data, state_->space}) {}
    template <class ExecutionContext>
        requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
    AsyncConnection(ExecutionContext& context, Connection connection)
        : AsyncConnection(executor_type(context.get_executor()), std::move(connection)) {}

    [[nodiscard]] executor_type get_executor() const noexcept { return state_->data->executor(); }
    [[nodiscard]] Connection& connection() noexcept { return state_->connection; }

    /// The next message as a T. Signature: void(std::exception_ptr, T).
    template <class T, class Token>
    auto async_recv(Token&& token) {
        return receive<T>(std::forward<Token>(token), {});
    }
    /// The next message's bytes. Signature: void(std::exception_ptr, std::vector<std::byte>).
    template <class Token>
    auto async_recv_bytes(Token&& token) {
        return receive<std::vector<std::byte>, true>(std::forward<Token>(token), {});
    }
    /// Sends `value` (encoded now, so it need not outlive the call) exactly once: when the ring is
    /// full the operation waits for room. A message larger than half the Pipe's capacity would
    /// have to stream while the io_context thread waits for the receiver: that is a ValueError.
    /// Signature: void(std::exception_ptr).
    template <class T, class Token>
    auto async_send(const T& value, Token&& token) {
        return send(encode(value), std::forward<Token>(token), {});
    }
    template <class Token>
    auto async_send_bytes(std::span<const std::byte> data, Token&& token) {
        return send(std::vector<std::byte>(data.begin(), data.end()), std::forward<Token>(token), {});
    }

    /// Ends every outstanding operation with operation_aborted.
    void cancel() { owner_.cancel(); }

private:
    struct State {
        State(const executor_type& executor, Connection connection_)
            : connection(std::move(connection_)), data(make_watch(executor, false)), space(make_watch(executor, true)) {}
        std::shared_ptr<detail::ReadinessWatch> make_watch(const executor_type& executor, bool room) {
            using ipc::detail::AsyncAccess;
            return std::make_shared<detail::ReadinessWatch>(
                executor, [c = connection, room]() mutable { return AsyncAccess::watch(c, room); },
                [c = connection, room]() mutable { AsyncAccess::unwatch(c, room); });
        }
        Connection connection;
        std::shared_ptr<detail::ReadinessWatch> data;   // readable: a message waits, or end of file
        std::shared_ptr<detail::ReadinessWatch> space;  // readable: the ring may have room again
    };

    /// `Raw`: the message's bytes as they are (recv_bytes), not a value to decode.
    template <class T, bool Raw = false, class Token>
    auto receive(Token&& token, std::shared_ptr<void> keep_alive) {
        auto attempt = [connection = state_->connection](bool) mutable -> std::optional<T> {
            const auto message = ipc::detail::AsyncAccess::try_recv(connection);
            if (!message) return std::nullopt;
            if constexpr (Raw)
                return T(message->begin(), message->end());
            else
                return decode<T>(*message);
        };
        return detail::start<T, void(std::exception_ptr, T)>(state_->data, std::move(attempt), std::forward<Token>(token),
                                                              std::move(keep_alive));
    }

    template <class Token>
    auto send(std::vector<std::byte> message, Token&& token, std::shared_ptr<void> keep_alive) {
        auto attempt = [connection = state_->connection,
                        message = std::move(message)](bool waited) mutable -> std::optional<std::monostate> {
            if (!ipc::detail::AsyncAccess::try_send(connection, message)) return std::nullopt;
            if (waited) ipc::detail::AsyncAccess::pass_on_room(connection);
            return std::monostate{};
        };
        return detail::start<std::monostate, void(std::exception_ptr)>(state_->space, std::move(attempt),
                                                                       std::forward<Token>(token), std::move(keep_alive));
    }

    template <class T, class E, class Token>
    friend auto async_recv(Connection& connection, E&& executor_or_context, Token&& token);
    template <class T, class E, class Token>
    friend auto async_send(Connection& connection, const T& value, E&& executor_or_context, Token&& token);

    std::shared_ptr<State> state_;  // shared with the operations
    detail::ReadinessWatchers owner_;
};

/// A Queue (SimpleQueue, JoinableQueue) served by an io_context: async_get. Several consumers —
/// in this io_context, other io_contexts or other processes — each get every message at most
/// once; the descriptor they share is only a hint, and a consumer that finds the queue empty
/// waits again. Handlers and lifetime as for AsyncConnection.
template <class T>
class AsyncQueue {
public:
    using executor_type = boost::asio::any_io_executor;

    AsyncQueue(const executor_type& executor, Queue<T> queue)
        : state_(std::make_shared<State>(executor, std::move(queue))), owner_({state_->watch}) {}
    AsyncQueue(const executor_type& executor, SimpleQueue<T> queue)
        : AsyncQueue(executor, ipc::detail::AsyncAccess::queue(queue)) {}
    template <class ExecutionContext, class AnyQueue>
        requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
    AsyncQueue(ExecutionContext& context, AnyQueue queue)
        : AsyncQueue(executor_type(context.get_executor()), std::move(queue)) {}

    [[nodiscard]] executor_type get_executor() const noexcept { return state_->watch->executor(); }

    /// The next item. Signature: void(std::exception_ptr, T).
    template <class Token>
    auto async_get(Token&& token) {
        return get(std::forward<Token>(token), {});
    }

    /// Ends every outstanding operation with operation_aborted.
    void cancel() { owner_.cancel(); }

private:
    struct State {
        State(const executor_type& executor, Queue<T> queue_)
            : queue(std::move(queue_)),
              watch(std::make_shared<detail::ReadinessWatch>(
                  executor, [q = queue]() mutable { return ipc::detail::AsyncAccess::core(q).watch(); },
                  [q = queue]() mutable { ipc::detail::AsyncAccess::core(q).unwatch(); })) {}
        Queue<T> queue;
        std::shared_ptr<detail::ReadinessWatch> watch;
    };

    template <class Token>
    auto get(Token&& token, std::shared_ptr<void> keep_alive) {
        auto attempt = [queue = state_->queue](bool) mutable -> std::optional<T> {
            const auto message = ipc::detail::AsyncAccess::core(queue).try_get();
            if (!message) return std::nullopt;
            return decode<T>(*message);
        };
        return detail::start<T, void(std::exception_ptr, T)>(state_->watch, std::move(attempt), std::forward<Token>(token),
                                                              std::move(keep_alive));
    }

    template <class U, class E, class Token>
    friend auto async_get(Queue<U>& queue, E&& executor_or_context, Token&& token);

    std::shared_ptr<State> state_;  // shared with the operations
    detail::ReadinessWatchers owner_;
};

// One-off operations, without a wrapper: each makes its own (so it registers a descriptor with the
// executor whenever it has to wait). For many operations on one handle, keep an AsyncConnection or
// AsyncQueue. `executor_or_context`: an io_context, or an executor such as co_await this_coro::executor.

/// As AsyncConnection::async_recv.
template <class T, class E, class Token>
auto async_recv(Connection& connection, E&& executor_or_context, Token&& token) {
    auto wrapper = std::make_shared<AsyncConnection>(detail::executor_of(executor_or_context), connection);
    auto& self = *wrapper;
    return self.template receive<T>(std::forward<Token>(token), std::move(wrapper));
}

/// As AsyncConnection::async_send.
template <class T, class E, class Token>
auto async_send(Connection& connection, const T& value, E&& executor_or_context, Token&& token) {
    auto wrapper = std::make_shared<AsyncConnection>(detail::executor_of(executor_or_context), connection);
    auto& self = *wrapper;
    return self.send(encode(value), std::forward<Token>(token), std::move(wrapper));
}

/// As AsyncQueue::async_get (for a Queue or JoinableQueue).
template <class T, class E, class Token>
auto async_get(Queue<T>& queue, E&& executor_or_context, Token&& token) {
    auto wrapper = std::make_shared<AsyncQueue<T>>(detail::executor_of(executor_or_context), queue);
    auto& self = *wrapper;
    return self.get(std::forward<Token>(token), std::move(wrapper));
}

/// As AsyncQueue::async_get, for a SimpleQueue.
template <class T, class E, class Token>
auto async_get(SimpleQueue<T>& queue, E&& executor_or_context, Token&& token) {
    return async_get(ipc::detail::AsyncAccess::queue(queue), std::forward<E>(executor_or_context), std::forward<Token>(token));
}

}  // namespace ipc::asio
