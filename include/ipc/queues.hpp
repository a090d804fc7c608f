// ipc/queues.hpp — Python's multiprocessing Queue, SimpleQueue and JoinableQueue, typed, on a
// shared-memory ring: many producers and consumers, each message delivered once, FIFO per producer.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ipc/codec.hpp"
#include "ipc/detail/deadline.hpp"
#include "ipc/detail/ring.hpp"
#include "ipc/detail/segment.hpp"
#include "ipc/error.hpp"

namespace ipc {

namespace detail {

struct QueueState;
struct AsyncAccess;
class Fd;

/// The untyped queue: a segment with a ring and, for JoinableQueue, a count of unfinished tasks.
class QueueCore {
public:
    QueueCore(std::size_t maxsize, std::size_t capacity, ElementType type);
    /// Reopens the queue a Process argument (or a message) names.
    QueueCore(codec::Reader& reader, ElementType type);
    QueueCore(const QueueCore&) = delete;
    QueueCore& operator=(const QueueCore&) = delete;
    ~QueueCore();
    void save(codec::Writer& writer) const;

    /// Sends `message`; Full when it cannot within `deadline` (or at once when not blocking).
    void put(std::span<const std::byte> message, bool block, const Deadline& deadline, bool count_task) {
        // A task to count takes the general way, which counts it before the message can be taken.
        if (count_task || !put_fast(BytesMessage{message}))
            put_general(MessageParts{message}, block, deadline, count_task);
    }
    /// The same for a message in parts, which the fast path did not take.
    void put_general(const MessageParts& message, bool block, const Deadline& deadline, bool count_task);
    /// The next message in a per-thread buffer; Empty when none comes in time.
    std::span<const std::byte> get(bool block, const Deadline& deadline) {
        auto& buffer = received_message;
        if (get_fast([&](const RecordView& message) {
                buffer.resize(message.size);
                message.copy(0, buffer.data(), message.size);
                return true;
            }))
            return buffer;
        return get_general(block, deadline);
    }
    /// The ring's fast path: it never waits, so it serves every deadline; false when it cannot
    /// (then nothing was sent, or taken).
    template <RingMessage Message>
    [[gnu::always_inline]] bool put_fast(const Message& message) noexcept {
        const auto taken = ring_send_fast(*ring_, message);
        if (taken == FastPath::taken_signal) signal_pollers();
        return taken != FastPath::not_taken;
    }
    template <class Take>
    bool get_fast(Take&& take) {
        const auto taken = ring_receive_fast(*ring_, ~std::uint64_t{0}, take);
        if (taken == FastPath::taken_signal) after_get();
        return taken != FastPath::not_taken;
    }
    [[nodiscard]] std::size_t qsize() const noexcept;
    [[nodiscard]] std::size_t maxsize() const noexcept;
    void task_done();
    bool join(const Deadline& deadline);
    /// Python 3.13's shutdown (see Queue::shutdown).
    void shutdown(bool immediate);
    [[nodiscard]] bool is_shut_down() const noexcept;
    [[nodiscard]] const std::string& name() const noexcept { return segment_->name(); }

    /// For ipc/asio.hpp: a get that never waits (nothing when it would block); and an event loop
    /// starts or stops waiting on the descriptor readable when a get may succeed (puts signal it
    /// while one does). watch() returns it, -1 for a handle that came inside a message (none).
    std::optional<std::span<const std::byte>> try_get();
    int watch();
    void unwatch() noexcept;

private:
    QueueState& state() const noexcept;
    const Ring& ring() const noexcept { return *ring_; }
    std::span<const std::byte> get_general(bool block, const Deadline& deadline);
    void signal_pollers() noexcept;
    void after_get() noexcept;
    void tasks_all_done() noexcept;
    [[noreturn]] void throw_shut_down_empty() const;

    static thread_local std::vector<std::byte> received_message;
    std::shared_ptr<Segment> segment_;
    std::optional<Ring> ring_;  // in *segment_
    // Readable when a message waits, once someone polls; made by the creator, inherited by fork and
    // handed to spawned children with the Process's arguments (null in a handle that came inside a
    // message: its puts do not signal, and async getters see them at their next periodic look).
    std::shared_ptr<Fd> wake_;
};

inline Deadline queue_deadline(bool block, std::optional<std::chrono::nanoseconds> timeout) {
    if (!block) return Deadline::after(std::chrono::nanoseconds(0));
    return timeout ? Deadline::after(*timeout) : Deadline::never();
}

}  // namespace detail

/// A FIFO queue of T between processes. put() encodes in the caller and reports every failure to
/// the caller (no feeder thread); get() decodes in the caller. maxsize 0 means unbounded (then only
/// the ring's bytes limit how many messages wait; a larger message streams through the ring).
template <class T>
class Queue {
public:
    explicit Queue(std::size_t maxsize = 0, std::size_t capacity = std::size_t{1} << 20)
        : core_(std::make_shared<detail::QueueCore>(maxsize, capacity, detail::ElementType::of<T>())) {}

    void put(const T& value, bool block = true, std::optional<std::chrono::nanoseconds> timeout = {}) {
        put_message(value, detail::queue_deadline(block, timeout), block);
    }
    void put_nowait(const T& value) { put(value, false); }
    T get(bool block = true, std::optional<std::chrono::nanoseconds> timeout = {}) {
        auto& queue = core("get");
        if constexpr (codec::DecodableInPlace<T>) {
            T value;  // straight out of the ring, when it can, and returned as it is
            auto take = [&](const detail::RecordView& message) { return codec::decode_flat(message, value); };
            if (!queue.get_fast(take)) value = decode<T>(queue.get(block, detail::queue_deadline(block, timeout)));
            return value;
        } else {
            return decode<T>(queue.get(block, detail::queue_deadline(block, timeout)));
        }
    }
    T get_nowait() { return get(false); }

    /// How many messages wait (approximate while others put and get, as in Python).
    [[nodiscard]] std::size_t qsize() const { return core("qsize").qsize(); }
    /// True on a closed handle too: nothing can come out of it (Python's empty() after close()).
    [[nodiscard]] bool empty() const { return !core_ || qsize() == 0; }
    [[nodiscard]] bool full() const {
        const auto limit = core("full").maxsize();
        return limit != 0 && qsize() >= limit;
    }
    /// Closes this handle; other handles and processes keep the queue.
    void close() noexcept { core_.reset(); }

    /// Python 3.13's shutdown, for every handle in every process: from now on put() raises ShutDown
    /// (a put blocked for room too), and get() takes what is left, then raises ShutDown (a get
    /// blocked on the empty queue at once). With `immediate`, what is left is dropped first, each
    /// dropped message counting as a task done for JoinableQueue.join(). A put that was already
    /// under way when shutdown() was called may still land; a get then returns it.
    void shutdown(bool immediate = false) { core("shutdown").shutdown(immediate); }
    /// Python's is_shutdown.
    [[nodiscard]] bool is_shutdown() const { return core("is_shutdown").is_shut_down(); }

    void ipc_save(codec::Writer& writer) const { core("send a Queue to a child").save(writer); }
    static Queue ipc_load(codec::Reader& reader) { return Queue(load_core(reader)); }

protected:
    friend struct detail::AsyncAccess;  // ipc/asio.hpp
    explicit Queue(std::shared_ptr<detail::QueueCore> core) noexcept : core_(std::move(core)) {}
    static std::shared_ptr<detail::QueueCore> load_core(codec::Reader& reader) {
        return std::make_shared<detail::QueueCore>(reader, detail::ElementType::of<T>());
    }
    detail::QueueCore& core(const char* operation) const {
        if (!core_) throw ValueError(std::string(operation) + ": the Queue is closed");
        return *core_;
    }
    void put_message(const T& value, const detail::Deadline& deadline, bool block, bool count_task = false) {
        auto& queue = core("put");
        if constexpr (codec::Flat<T>) {
            // Straight into the ring: inline when it can, else in parts (a large value streams).
            const codec::FlatMessage<T> message(value);
            if (count_task || !queue.put_fast(message)) queue.put_general(message.parts(), block, deadline, count_task);
        } else {
            thread_local std::vector<std::byte> buffer;
            buffer.clear();
            encode_into(buffer, value);
            queue.put(buffer, block, deadline, count_task);
        }
    }

    std::shared_ptr<detail::QueueCore> core_;
};

/// Python's SimpleQueue: put, get, empty, close — an unbounded Queue.
template <class T>
class SimpleQueue {
public:
    SimpleQueue() = default;
    void put(const T& value) { queue_.put(value); }
    T get() { return queue_.get(); }
    [[nodiscard]] bool empty() const { return queue_.empty(); }
    void close() noexcept { queue_.close(); }

    void ipc_save(codec::Writer& writer) const { queue_.ipc_save(writer); }
    static SimpleQueue ipc_load(codec::Reader& reader) { return SimpleQueue(Queue<T>::ipc_load(reader)); }

private:
    friend struct detail::AsyncAccess;  // ipc/asio.hpp
    explicit SimpleQueue(Queue<T> queue) : queue_(std::move(queue)) {}
    Queue<T> queue_;
};

/// A Queue that counts unfinished tasks: put() adds one, task_done() removes one, join() waits
/// until none is left.
template <class T>
class JoinableQueue : public Queue<T> {
public:
    explicit JoinableQueue(std::size_t maxsize = 0, std::size_t capacity = std::size_t{1} << 20)
        : Queue<T>(maxsize, capacity) {}

    void put(const T& value, bool block = true, std::optional<std::chrono::nanoseconds> timeout = {}) {
        this->put_message(value, detail::queue_deadline(block, timeout), block, true);
    }
    void put_nowait(const T& value) { put(value, false); }
    /// ValueError when called more often than items were put.
    void task_done() { this->core("task_done").task_done(); }
    void join() { this->core("join").join(detail::Deadline::never()); }
    /// True when every task was done within `timeout`.
    template <class Rep, class Period>
    bool join(std::chrono::duration<Rep, Period> timeout) {
        return this->core("join").join(detail::Deadline::after(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout)));
    }

    static JoinableQueue ipc_load(codec::Reader& reader) { return JoinableQueue(Queue<T>::load_core(reader)); }

private:
    explicit JoinableQueue(std::shared_ptr<detail::QueueCore> core) noexcept : Queue<T>(std::move(core)) {}
};

}  // namespace ipc
