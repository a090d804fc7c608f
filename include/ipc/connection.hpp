// ipc/connection.hpp — Python's multiprocessing.connection on shared memory: Pipe() gives two
// Connection ends that carry typed objects or raw bytes, with EOF when every writer is gone.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ipc/codec.hpp"
#include "ipc/detail/connection_fast_path.hpp"
#include "ipc/detail/deadline.hpp"
#include "ipc/detail/ring.hpp"
#include "ipc/error.hpp"

namespace ipc {

namespace detail {
struct ConnectionCore;
struct AsyncAccess;
struct SocketConnections;
}

class Connection;

/// Room for one message inside a Pipe's ring, lent to the sender (zero copy, as iceoryx2's loans):
/// write the message into bytes(), then `conn.send(std::move(loan))` publishes it where it is.
/// Dropped unsent, the room goes back and nothing is published; a process killed with a loan open
/// leaves nothing half-written either. While a loan is open, its thread's other sends on that end
/// are a ValueError and other threads' sends wait for it. (A TCP Connection lends a buffer of its
/// own and sends a copy.)
class Loan {
public:
    Loan(Loan&& other) noexcept { *this = std::move(other); }
    Loan& operator=(Loan&& other) noexcept;
    Loan(const Loan&) = delete;
    Loan& operator=(const Loan&) = delete;
    ~Loan() { cancel(); }

    [[nodiscard]] std::span<std::byte> bytes() const noexcept { return {data_, size_}; }
    [[nodiscard]] std::byte* data() const noexcept { return data_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
    friend class Connection;
    Loan(std::shared_ptr<detail::ConnectionCore> core, const detail::Ring* ring, const detail::RingLoan& loan) noexcept
        : core_(std::move(core)), ring_(ring), loan_(loan), data_(loan.data), size_(loan.size) {}
    Loan(std::shared_ptr<detail::ConnectionCore> core, std::size_t size);  // a socket's: a buffer of its own
    void cancel() noexcept;
    /// The loan was published: nothing is left to give back.
    void sent() noexcept {
        ring_ = nullptr;
        core_.reset();
        data_ = nullptr;
        size_ = 0;
    }

    std::shared_ptr<detail::ConnectionCore> core_;
    const detail::Ring* ring_ = nullptr;  // null when the room is a buffer of its own, or the loan ended
    detail::RingLoan loan_;
    std::vector<std::byte> own_;
    std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

/// A received message read where it lies in the ring (zero copy): bytes() stays valid until the
/// view is dropped or release()d, which frees the room. While it is held, its thread's other
/// receives on that end are a ValueError and other threads' receives wait. A message that does not
/// lie in one piece (it wraps around the ring's end, or it streamed) comes as a copy, held the same
/// way; so does every message of a TCP Connection.
class MessageView {
public:
    MessageView(MessageView&& other) noexcept { *this = std::move(other); }
    MessageView& operator=(MessageView&& other) noexcept;
    MessageView(const MessageView&) = delete;
    MessageView& operator=(const MessageView&) = delete;
    ~MessageView() { release(); }

    [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
    [[nodiscard]] const std::byte* data() const noexcept { return data_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    /// True while it reads the message in the ring (not a copy).
    [[nodiscard]] bool in_place() const noexcept { return ring_ != nullptr; }
    /// Frees the message now, as dropping the view does; bytes() is empty afterwards.
    void release() noexcept {
        if (ring_ != nullptr) {  // the inline way; another thread's view goes the general way
            const auto freed = detail::ring_release_view_fast(*ring_, view_);
            if (freed != detail::FastPath::not_taken) ring_ = nullptr;
            if (freed == detail::FastPath::taken_signal) signal_after_release();
        }
        if (core_ || data_ != nullptr) release_general();
    }

private:
    friend class Connection;
    MessageView(std::shared_ptr<detail::ConnectionCore> core, const detail::Ring* ring, const detail::RingView& view) noexcept
        : core_(std::move(core)), ring_(ring), view_(view), data_(view.data), size_(view.size) {}
    explicit MessageView(std::vector<std::byte> copy) noexcept;
    void release_general() noexcept;
    void signal_after_release() noexcept;

    std::shared_ptr<detail::ConnectionCore> core_;
    const detail::Ring* ring_ = nullptr;  // null for a copy, or once released
    detail::RingView view_;
    std::vector<std::byte> copy_;
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

/// One end of a Pipe. Copies in one process are the same end; passing it to a Process gives the
/// child a copy of the end. recv() raises EOFError once the ring is empty and no process holds the
/// other end any more — also when its holders died without closing it.
/// A TCP Listener/Client's Connection (ipc/listener.hpp) has the same API over its socket instead:
/// frames of an 8-byte length and the bytes; EOFError once the peer closed it (or its process
/// ended), BrokenPipeError on a send after that. Passed to a child, the child gets a duplicate
/// of the socket, and the peer sees end of file only once every process closed it.
class Connection {
public:
    Connection(const Connection&) = default;
    Connection& operator=(const Connection&) = default;
    // A moved-from end is closed, as one whose core is gone: its fast path goes with the core.
    Connection(Connection&& other) noexcept
        : core_(std::move(other.core_)), fast_(std::exchange(other.fast_, nullptr)) {}
    Connection& operator=(Connection&& other) noexcept {
        core_ = std::move(other.core_);
        fast_ = std::exchange(other.fast_, nullptr);
        return *this;
    }
    ~Connection() = default;

    /// Sends any value the codec can encode; the receiver must ask for the same type.
    template <class T>
    void send(const T& value) {
        static_assert(!std::is_same_v<T, Loan>, "send a Loan with send(std::move(loan)): sending ends the loan");
        if constexpr (codec::Flat<T>) {
            // Straight into the ring: inline when it can, else in parts (a large value streams).
            const codec::FlatMessage<T> message(value);
            if (!send_fast(message)) send_general(message.parts(), true);
        } else {
            thread_local std::vector<std::byte> buffer;
            buffer.clear();
            encode_into(buffer, value);
            send_message(buffer);
        }
    }
    /// The next message as a T; CodecError when it holds another type, EOFError at end of file.
    template <class T>
    T recv() {
        if constexpr (codec::DecodableInPlace<T>) {
            T value;  // straight out of the ring, when it can, and returned as it is
            auto take = [&](const detail::RecordView& message) { return codec::decode_flat(message, value); };
            if (!receive_fast(no_limit, take)) value = decode<T>(receive_message(no_limit));
            return value;
        } else {
            return decode<T>(receive_message(no_limit));
        }
    }

    /// Sends `size` bytes of `data` from `offset` (all of the rest by default) as one message.
    /// (Inline: an optional passed through a call costs a stalled store-to-load forward per message.)
    void send_bytes(std::span<const std::byte> data, std::size_t offset = 0, std::optional<std::size_t> size = {}) {
        if (offset > data.size() || (size && *size > data.size() - offset)) reject_range(data.size(), offset, size);
        send_message(data.subspan(offset, size.value_or(data.size() - offset)));
    }
    /// The next message's bytes; a message longer than `maxlength` is a BufferTooShort and stays.
    std::vector<std::byte> recv_bytes(std::optional<std::size_t> maxlength = {});

    /// Room for a message of `size` bytes inside the ring, to write in place and send(std::move())
    /// (see Loan); waits for room as a send does. A loan larger than half the ring's capacity is a
    /// ValueError: make the Pipe's capacity at least twice the largest loan.
    [[nodiscard]] Loan loan(std::size_t size) {
        detail::RingLoan lent;
        if (fast_ && fast_->lend(size, lent)) return Loan(core_, fast_->out.load(std::memory_order_relaxed), lent);
        return loan_general(size);
    }
    /// Publishes a loan of this end as one message (all its bytes, or its first `size`), and ends it.
    void send(Loan&& loan) {
        const auto size = loan.size();
        send(std::move(loan), size);
    }
    void send(Loan&& loan, std::size_t size) {
        if (loan.ring_ != nullptr && fast_ && fast_->out.load(std::memory_order_relaxed) == loan.ring_ &&
            loan.core_ == core_) {
            const auto sent = detail::ring_publish_loan_fast(*loan.ring_, loan.loan_, size);
            if (sent != detail::FastPath::not_taken) {
                loan.sent();
                if (sent == detail::FastPath::taken_signal) signal_after_send();
                return;
            }
        }
        send_loan_general(std::move(loan), size);
    }
    /// The next message, read in place (see MessageView); a message longer than `maxlength` is a
    /// BufferTooShort and stays, as with recv_bytes.
    [[nodiscard]] MessageView recv_view(std::optional<std::size_t> maxlength = {}) {
        auto* ring = fast_ ? fast_->in.load(std::memory_order_relaxed) : nullptr;
        detail::RingView view;
        if (ring != nullptr && detail::ring_view_fast(*ring, maxlength.value_or(no_limit), view))
            return MessageView(core_, ring, view);
        return recv_view_general(maxlength);
    }
    /// Copies the next message into `buffer` from `offset` and returns its size; a message that does
    /// not fit is a BufferTooShort and stays in the connection.
    std::size_t recv_bytes_into(std::span<std::byte> buffer, std::size_t offset = 0) {
        std::size_t size = 0;
        if (offset <= buffer.size() && receive_fast(buffer.size() - offset, [&](const detail::RecordView& message) {
                message.copy(0, buffer.data() + offset, message.size);
                size = message.size;
                return true;
            }))
            return size;
        return recv_bytes_into_general(buffer, offset);
    }

    /// True when recv() would not block (a message, or end of file); never consumes.
    bool poll() { return poll_until(detail::Deadline::after(std::chrono::nanoseconds(0))); }
    template <class Rep, class Period>
    bool poll(std::chrono::duration<Rep, Period> timeout) {
        return poll_until(detail::deadline_after(timeout));
    }
    /// Blocks until a message or end of file.
    bool poll_forever() { return poll_until(detail::Deadline::never()); }

    /// A descriptor that poll(2), epoll or Boost.Asio can wait on: readable when recv() would not
    /// block (a message waits, or the other end was closed). Senders signal it from the first call
    /// on, so a Connection never polled pays nothing for it. May be readable spuriously: confirm
    /// with poll().
    [[nodiscard]] int fileno();

    /// Closes this process's end: once no process holds it, the peer reads EOF.
    void close() noexcept;
    [[nodiscard]] bool closed() const noexcept;
    [[nodiscard]] bool readable() const noexcept;
    [[nodiscard]] bool writable() const noexcept;

    void ipc_save(codec::Writer& writer) const;
    static Connection ipc_load(codec::Reader& reader);
    /// A forked child holds this end only when it is passed to it as an argument.
    void ipc_forked(bool in_child, std::uint32_t child) noexcept;
    friend bool operator==(const Connection& a, const Connection& b) noexcept { return a.core_ == b.core_; }

private:
    friend std::pair<Connection, Connection> Pipe(bool duplex, std::size_t capacity);
    friend struct detail::AsyncAccess;  // ipc/asio.hpp
    friend struct detail::SocketConnections;  // a TCP Listener/Client's Connection
    friend class Waitable;
    static constexpr std::size_t no_limit = ~std::size_t{0};
    explicit Connection(std::shared_ptr<detail::ConnectionCore> core) noexcept;

    // Sends and receives take the ring's fast path when they can, inline; else the general way,
    // which waits, streams, and looks whether the peer still lives.
    void send_message(std::span<const std::byte> message) {
        if (!send_fast(detail::BytesMessage{message})) send_general(detail::MessageParts{message}, true);
    }
    template <detail::RingMessage Message>
    [[gnu::always_inline]] bool send_fast(const Message& message) {
        const auto taken = fast_ ? fast_->send(message) : detail::FastPath::not_taken;
        if (taken == detail::FastPath::taken_signal) signal_after_send();
        return taken != detail::FastPath::not_taken;
    }
    /// Takes the next message by the fast path when it can: true when `take(RecordView)` took it.
    template <class Take>
    bool receive_fast(std::size_t max_size, Take&& take) {
        auto* ring = fast_ ? fast_->in.load(std::memory_order_relaxed) : nullptr;
        if (ring == nullptr) return false;
        const auto taken = detail::ring_receive_fast(*ring, max_size, take);
        if (taken == detail::FastPath::taken_signal) signal_after_receive();
        return taken != detail::FastPath::not_taken;
    }
    /// The next message, in a per-thread buffer valid until this thread's next receive.
    std::span<const std::byte> receive_message(std::size_t max_size) {
        auto& buffer = received_message;
        if (receive_fast(max_size, [&](const detail::RecordView& message) {
                buffer.resize(message.size);
                message.copy(0, buffer.data(), message.size);
                return true;
            }))
            return buffer;
        return *receive_general(max_size, true);
    }
    static thread_local std::vector<std::byte> received_message;
    void signal_after_send() noexcept;
    void signal_after_receive() noexcept;
    Loan loan_general(std::size_t size);
    void send_loan_general(Loan&& loan, std::size_t size);
    MessageView recv_view_general(std::optional<std::size_t> maxlength);
    std::size_t recv_bytes_into_general(std::span<std::byte> buffer, std::size_t offset);
    [[noreturn]] static void reject_range(std::size_t buffer_size, std::size_t offset, std::optional<std::size_t> size);
    // The general send and receive, also without ever waiting (for an event loop, ipc/asio.hpp):
    // then false / nothing when they would block, and a message that must stream is a ValueError.
    bool send_general(const detail::MessageParts& message, bool block);
    std::optional<std::span<const std::byte>> receive_general(std::size_t max_size, bool block);
    /// For ipc/asio.hpp: an event loop starts or stops waiting on this end's descriptor for
    /// messages (fileno()), or for room in a full ring (`room`); while one does, the other side
    /// signals it. watch() returns the descriptor, -1 when there is none.
    int watch(bool room);
    void unwatch(bool room) noexcept;
    /// For ipc/asio.hpp, after a send that waited for room: passes the wake-up on to other waiters.
    void pass_on_room();
    /// For wait(): this end's descriptor was readable with no message; drains a stale signal.
    void drop_stale_signal() noexcept;
    bool poll_until(const detail::Deadline& deadline);
    detail::ConnectionCore& core(const char* operation) const;

    std::shared_ptr<detail::ConnectionCore> core_;
    detail::EndFastPath* fast_ = nullptr;  // in *core_
};

/// Something wait() can wait for: a Connection (ready when recv() would not block), a Process or
/// anything else with a sentinel() descriptor (ready when it has ended) or any file descriptor
/// (ready when readable).
class Waitable {
public:
    Waitable(Connection connection) : connection_(std::move(connection)) {}  // NOLINT: as Python's list
    template <class WithSentinel>
        requires requires(const WithSentinel& object) {
            { object.sentinel() } -> std::convertible_to<int>;
        }
    Waitable(const WithSentinel& object) : fd_(object.sentinel()) {}  // NOLINT: a Process, as in Python
    Waitable(int fd) : fd_(fd) {}                                     // NOLINT
    [[nodiscard]] int fileno();
    /// True when ready now; for a Connection, confirmed with poll().
    [[nodiscard]] bool ready();

private:
    friend std::vector<std::size_t> wait(std::span<Waitable>, std::optional<std::chrono::nanoseconds>);
    void drop_stale_signal() noexcept {
        if (connection_) connection_->drop_stale_signal();
    }

    std::optional<Connection> connection_;
    int fd_ = -1;
};

/// Python's multiprocessing.connection.wait: blocks until at least one object is ready or the
/// timeout passes, and returns the indices of the ready ones (empty on timeout).
std::vector<std::size_t> wait(std::span<Waitable> objects, std::optional<std::chrono::nanoseconds> timeout = {});

/// Two connected ends, as Python's Pipe(): both ends send and receive when `duplex`; otherwise the
/// first only receives and the second only sends. Each direction has a ring of `capacity` bytes
/// (rounded up to a power of two); larger messages stream through it.
std::pair<Connection, Connection> Pipe(bool duplex = true, std::size_t capacity = std::size_t{1} << 20);

}  // namespace ipc
