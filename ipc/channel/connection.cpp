// channel/connection.cpp — Pipe and Connection: two ends over one or two rings in a segment, with
// end of file when no process holds the other end, and readiness descriptors for event loops. A
// Connection over a socket (a TCP Listener/Client) hands each call to its SocketChannel instead.
#include "ipc/connection.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>

#include "channel/socket_channel.hpp"
#include "channel/wake_fd.hpp"
#include "ipc/detail/fence.hpp"
#include "ipc/detail/ring.hpp"
#include "shm/holders.hpp"
#include "shm/liveness.hpp"
#include "sys/fd.hpp"

namespace ipc {

namespace detail {

namespace {

/// The pipe segment: who holds each end, then one ring per direction.
struct alignas(64) PipeState {
    Holders holders[2];
    std::uint64_t capacity = 0;
    std::uint32_t duplex = 0;
};

/// Ring `index` of the pipe segment (1 -> 0 first, then 0 -> 1 in a duplex pipe), checked against
/// what the segment holds, for the end `what` names.
Ring ring_at(const Segment& segment, int index, const std::string& what) {
    const auto area = segment.payload_after(sizeof(PipeState), "Pipe");
    const auto duplex = segment.at<PipeState>()->duplex;
    if (duplex > 1)
        throw CorruptSegmentError(what + ": its duplex flag holds " + std::to_string(duplex) +
                                  " (corrupt, or not made by ipc)");
    const std::size_t rings = duplex + 1;
    if (area.size() % rings != 0)
        throw CorruptSegmentError(what + ": its " + std::to_string(area.size()) + " bytes of rings do not split into " +
                                  std::to_string(rings) + " (corrupt, or not made by ipc)");
    const auto size = area.size() / rings;
    return Ring::open(area.subspan(static_cast<std::size_t>(index) * size, size), what);
}

}  // namespace

struct ConnectionCore {
    std::unique_ptr<SocketChannel> socket;  // set on a socket's Connection, which has no segment
    std::shared_ptr<Segment> segment;
    int end = 0;
    std::optional<Ring> in;   // none on a write-only end
    std::optional<Ring> out;  // none on a read-only end
    Holders* peers = nullptr;
    std::unique_ptr<EndpointHold> hold;
    WakeFd in_wake;   // readable when `in` has a message (once someone polls)
    WakeFd out_wake;  // the peer's in_wake: signalled after a send, when the peer polls
    // For senders that wait in an event loop (ipc/asio.hpp) when the ring is full; may be null.
    WakeFd in_space;   // the peer's out_space: signalled when a receive here frees room it waits for
    WakeFd out_space;  // readable when `out` may have room again
    std::atomic<bool> closed{false};  // close() may run while another thread is in a call
    EndFastPath fast;  // for the inline sends and receives (Connection::send_message)
    // A send looks whether a reader still holds the other end: a closed end empties its slot,
    // which costs a load to see, but a killed one is found only by a look at /proc, so sends look
    // on the liveness throttle (EndFastPath for the sends in between); a reader that died is still
    // noticed while the ring has room, or at once when it fills. Receives that never wait look
    // for end of file on their own throttle.
    LookThrottle send_looks;
    LookThrottle receive_looks;

    ConnectionCore(std::shared_ptr<Segment> segment_, int end_, WakeFd in_wake_, WakeFd out_wake_,
                   WakeFd in_space_ = {}, WakeFd out_space_ = {})
        : segment(std::move(segment_)), end(end_), in_wake(std::move(in_wake_)), out_wake(std::move(out_wake_)),
          in_space(std::move(in_space_)), out_space(std::move(out_space_)) {
        auto& state = *segment->at<PipeState>();
        const auto name = what();
        if (end == 0 || state.duplex) in.emplace(ring_at(*segment, end, name));
        if (end == 1 || state.duplex) out.emplace(ring_at(*segment, 1 - end, name));
        peers = &state.holders[1 - end];
        // When this process lets go of the end (close, last handle, exit), a peer that polls our
        // outgoing ring's descriptor must look again: it may be at end of file now (and a peer
        // waiting for room in our incoming ring may have nobody left to read).
        hold = std::make_unique<EndpointHold>(segment, state.holders[end],
                                              [ring = out ? &*out : nullptr, wake = out_wake, in_ring = in ? &*in : nullptr,
                                               space = in_space] {
            if (ring && (*ring)->pollers.load(std::memory_order_relaxed)) signal_wake(wake);
            if (in_ring && (*in_ring)->space_pollers.load(std::memory_order_relaxed)) signal_wake(space);
        });
    }

    explicit ConnectionCore(std::unique_ptr<SocketChannel> socket_) : socket(std::move(socket_)) {}

    [[nodiscard]] std::string what() const {
        if (socket) return socket->what();
        return "Connection '" + segment->name() + "' end " + std::to_string(end);
    }

    /// The senders an immediate receive should check for end of file, or null for "not now". An end
    /// closed normally empties its slots, which costs nothing to see; a holder killed by SIGKILL
    /// is seen by a look at /proc, on the liveness throttle.
    const Holders* senders_to_check() {
        if (!receive_looks.due() && peers->first_listed() != nullptr) return nullptr;
        receive_looks.looked();
        return peers;
    }

    /// Frees the ring locks this thread keeps between calls, so the next user finds them free.
    void let_go() noexcept {
        if (in) detail::ring_let_go(*in);
        if (out) detail::ring_let_go(*out);
    }
    ~ConnectionCore() { let_go(); }

    /// The look of a send that takes the general way; when the other end is held, the next sends
    /// may take the fast path.
    bool peers_alive() {
        const auto* reader = peers->first_listed();
        if (reader == nullptr) return false;
        if (send_looks.due()) {
            if (!peers->any_alive()) return false;
            send_looks.looked();
        }
        fast.reader.store(reader, std::memory_order_relaxed);
        fast.sends_until_look.store(EndFastPath::sends_per_look, std::memory_order_relaxed);
        return true;
    }
};

}  // namespace detail

using detail::Deadline;
using detail::RingResult;

namespace {
/// Only a Queue's ring is ever shut down: a Pipe's that says so was written over.
[[noreturn]] void throw_shut_down_pipe(const detail::ConnectionCore& c) {
    throw CorruptSegmentError(c.what() + ": its ring says it was shut down, which a Pipe's never is (another process "
                                         "wrote over its shared memory)");
}

/// After a receive took a message out of `c`'s ring (or did not): a sender waiting in an event loop
/// hears of the room it freed, and the readiness descriptor says whether more wait.
void after_receive(detail::ConnectionCore& c, bool woke_senders) noexcept {
    if (woke_senders && (*c.in)->space_pollers.load(std::memory_order_relaxed)) detail::signal_wake(c.in_space);
    if ((*c.in)->pollers.load(std::memory_order_relaxed)) detail::settle_wake(*c.in, c.in_wake);
}

bool check_received(detail::ConnectionCore& c, const detail::Received& received, std::size_t max_size);
}  // namespace

std::pair<Connection, Connection> Pipe(bool duplex, std::size_t capacity) {
    const auto ring_bytes = detail::RingState::capacity_for(capacity, "Pipe");
    const int rings = duplex ? 2 : 1;
    auto segment = detail::Segment::create(
        "", detail::Kind::pipe, {}, sizeof(detail::PipeState) + rings * detail::RingState::size_for(ring_bytes),
        [&](std::span<std::byte> payload) {
            auto* state = new (payload.data()) detail::PipeState{};
            state->capacity = ring_bytes;
            state->duplex = duplex ? 1 : 0;
            for (int i = 0; i < rings; ++i)
                new (payload.data() + sizeof(detail::PipeState) + i * detail::RingState::size_for(ring_bytes))
                    detail::RingState(ring_bytes, 0);
        });
    // Two eventfds per ring, one saying "a message waits", one "room again" (for senders in an
    // event loop): end 0 reads ring 0, end 1 reads ring 1 (in a duplex pipe).
    auto wake0 = detail::make_wake_fd("Pipe");
    auto wake1 = duplex ? detail::make_wake_fd("Pipe") : nullptr;
    auto space0 = detail::make_wake_fd("Pipe");
    auto space1 = duplex ? detail::make_wake_fd("Pipe") : nullptr;
    return {Connection(std::make_shared<detail::ConnectionCore>(segment, 0, wake0, wake1, space0, space1)),
            Connection(std::make_shared<detail::ConnectionCore>(segment, 1, wake1, wake0, space1, space0))};
}

detail::ConnectionCore& Connection::core(const char* operation) const {
    if (!core_ || core_->closed)
        throw OSError(std::string(operation) + " on a Connection", "", "handle is closed", EBADF);
    return *core_;
}


bool Connection::send_general(const detail::MessageParts& message, bool block) {
    auto& c = core("send");
    if (c.socket) return c.socket->send(message, block);
    if (!c.out) throw OSError("send on " + c.what(), "", "connection is read-only", EBADF);
    if (!c.peers_alive()) throw BrokenPipeError("send", c.what() + " (every reader is gone)", EPIPE);
    const auto size = detail::message_size(message);
    if (!block && size > detail::ring_max_unstreamed(*c.out))
        throw ValueError("send without blocking on " + c.what() + ": the message has " + std::to_string(size) +
                         " bytes, more than the " + std::to_string(detail::ring_max_unstreamed(*c.out)) +
                         " that cross the ring in one piece (make the Pipe's capacity at least twice the message)");
    const auto wait = block ? detail::RingWait::block : detail::RingWait::immediate;
    switch (detail::ring_send(*c.out, message, Deadline::never(), c.peers, wait)) {
        case RingResult::done:
            if ((*c.out)->pollers.load(std::memory_order_relaxed)) detail::signal_wake(c.out_wake);
            return true;
        case RingResult::peer_gone: throw BrokenPipeError("send", c.what() + " (every reader is gone)", EPIPE);
        case RingResult::timed_out:
            if (!block) return false;
            break;
        case RingResult::shut_down: throw_shut_down_pipe(c);
    }
    throw TimeoutError("send on " + c.what() + " timed out");
}

namespace {
/// For senders that wait for room on `out_space`: the next receive that frees room signals it (the
/// senders' flag), and so does this call if there is room already (which a receive may have made
/// before anyone asked).
void ask_for_room(detail::ConnectionCore& c) {
    (*c.out)->senders_sleeping.store(1, std::memory_order_seq_cst);
    detail::heavy_fence();  // pairs with the receivers' light fence before they look at the flag
    if (c.out->half_free()) detail::signal_wake(c.out_space);
}

/// The readiness descriptor of `c`'s incoming ring for someone who starts polling it: messages
/// sent (or ends closed) before anyone polled left no signal, so make the state visible now.
int readable_descriptor(detail::ConnectionCore& c) {
    if (detail::ring_poll(*c.in, Deadline::after(std::chrono::nanoseconds(0)), nullptr) || !c.peers->any_alive())
        detail::signal_wake(c.in_wake);
    return c.in_wake->get();
}
}  // namespace

void Connection::pass_on_room() {
    // The wake-up this sender used may have been the only one for several senders that wait.
    auto& c = core("send");
    if (!c.socket) ask_for_room(c);
}

int Connection::watch(bool room) {
    // A socket's descriptor carries the messages themselves, which the event loop's read of a wake
    // signal would eat: without one, the loop looks again every few milliseconds (ipc/asio.hpp).
    if (core(room ? "send" : "recv").socket) return -1;
    if (!room) {
        auto& c = core("recv");
        if (!c.in) throw OSError("recv on " + c.what(), "", "connection is write-only", EBADF);
        if (!c.in_wake) return -1;
        (*c.in)->pollers.fetch_add(detail::RingState::loop_poller, std::memory_order_seq_cst);
        detail::heavy_fence();  // a sender that publishes after our look sees the flag
        return readable_descriptor(c);
    }
    auto& c = core("send");
    if (!c.out) throw OSError("send on " + c.what(), "", "connection is read-only", EBADF);
    if (!c.out_space) return -1;
    (*c.out)->space_pollers.fetch_add(1, std::memory_order_seq_cst);
    ask_for_room(c);
    return c.out_space->get();
}

void Connection::unwatch(bool room) noexcept {
    if (!core_) return;  // a closed end's rings stay mapped while core_ lives
    if (!room && core_->in) (*core_->in)->pollers.fetch_sub(detail::RingState::loop_poller, std::memory_order_relaxed);
    if (room && core_->out && core_->out_space) (*core_->out)->space_pollers.fetch_sub(1, std::memory_order_relaxed);
}

std::optional<std::span<const std::byte>> Connection::receive_general(std::size_t max_size, bool block) {
    auto& c = core("recv");
    auto& buffer = received_message;
    if (c.socket) {
        const auto deadline = block ? Deadline::never() : Deadline::after(std::chrono::nanoseconds(0));
        if (!c.socket->receive(buffer, max_size, deadline)) return std::nullopt;
        return buffer;
    }
    if (!c.in) throw OSError("recv on " + c.what(), "", "connection is write-only", EBADF);
    const auto received = block ? detail::ring_receive(*c.in, buffer, Deadline::never(), c.peers, max_size)
                                : detail::ring_receive(*c.in, buffer, Deadline::never(), c.senders_to_check(), max_size,
                                                       detail::RingWait::immediate);
    if (!check_received(c, received, max_size)) return std::nullopt;
    return buffer;
}

namespace {

/// What a receive from `c`'s ring says to the caller: false when it timed out (a receive that
/// does not wait); EOFError, BufferTooShort or a corrupt Pipe's error otherwise.
bool check_received(detail::ConnectionCore& c, const detail::Received& received, std::size_t max_size) {
    if (received.result == RingResult::shut_down) throw_shut_down_pipe(c);
    if (received.result == RingResult::peer_gone)
        throw EOFError("recv on " + c.what() + ": end of file (no process holds the other end any more)");
    if (received.result == RingResult::timed_out) {
        if (received.woke_senders && (*c.in)->space_pollers.load(std::memory_order_relaxed)) detail::signal_wake(c.in_space);
        return false;
    }
    after_receive(c, received.woke_senders);
    if (received.refused)
        throw BufferTooShort("recv on " + c.what() + ": the message has " + std::to_string(received.size) +
                                 " bytes, more than the " + std::to_string(max_size) + " allowed; it stays in the connection",
                             received.size);
    return true;
}

}  // namespace

void Connection::reject_range(std::size_t buffer_size, std::size_t offset, std::optional<std::size_t> size) {
    if (offset > buffer_size)
        throw ValueError("send_bytes: offset " + std::to_string(offset) + " is past the buffer's end (" +
                         std::to_string(buffer_size) + " bytes)");
    throw ValueError("send_bytes: offset " + std::to_string(offset) + " + size " + std::to_string(size.value_or(0)) +
                     " is past the buffer's end (" + std::to_string(buffer_size) + " bytes)");
}

std::vector<std::byte> Connection::recv_bytes(std::optional<std::size_t> maxlength) {
    const auto message = receive_message(maxlength.value_or(no_limit));
    return {message.begin(), message.end()};
}

std::size_t Connection::recv_bytes_into_general(std::span<std::byte> buffer, std::size_t offset) {
    if (offset > buffer.size()) throw ValueError("recv_bytes_into: offset " + std::to_string(offset) + " is past the buffer's end");
    const auto message = *receive_general(buffer.size() - offset, true);
    if (!message.empty()) std::memcpy(buffer.data() + offset, message.data(), message.size());
    return message.size();
}

bool Connection::poll_until(const Deadline& deadline) {
    auto& c = core("poll");
    if (c.socket) return c.socket->poll(deadline);
    if (!c.in) throw OSError("poll on " + c.what(), "", "connection is write-only", EBADF);
    // At end of file recv() does not block either (it raises EOFError), so poll says true.
    return detail::ring_poll(*c.in, deadline, c.peers) || (!c.peers->any_alive());
}

thread_local std::vector<std::byte> Connection::received_message;

Connection::Connection(std::shared_ptr<detail::ConnectionCore> core) noexcept : core_(std::move(core)) {
    if (!core_) return;
    core_->fast.in.store(core_->in ? &*core_->in : nullptr, std::memory_order_relaxed);
    core_->fast.out.store(core_->out ? &*core_->out : nullptr, std::memory_order_relaxed);
    fast_ = &core_->fast;
}

void Connection::signal_after_send() noexcept {
    if ((*core_->out)->pollers.load(std::memory_order_relaxed)) detail::signal_wake(core_->out_wake);
}

void Connection::signal_after_receive() noexcept {
    auto& c = *core_;
    if ((*c.in)->space_pollers.load(std::memory_order_relaxed)) detail::signal_wake(c.in_space);
    if ((*c.in)->pollers.load(std::memory_order_relaxed)) detail::settle_wake(*c.in, c.in_wake);
}

void Connection::close() noexcept {
    if (!core_ || core_->closed) return;
    core_->closed = true;
    if (core_->socket) return core_->socket->close();
    core_->fast.in.store(nullptr, std::memory_order_relaxed);
    core_->fast.out.store(nullptr, std::memory_order_relaxed);
    core_->let_go();
    core_->hold->release();  // also wakes a peer polling for end of file
}

int Connection::fileno() {
    auto& c = core("fileno");
    if (c.socket) return c.socket->fd();
    if (!c.in) throw OSError("fileno of " + c.what(), "", "connection is write-only", EBADF);
    (*c.in)->pollers.fetch_or(detail::RingState::fileno_poller, std::memory_order_seq_cst);
    detail::heavy_fence();
    return readable_descriptor(c);
}

void Connection::drop_stale_signal() noexcept {
    // A socket's descriptor is readable with data of a frame not yet whole: that is no signal.
    if (!core_ || core_->closed || core_->socket || !core_->in_wake) return;
    std::uint64_t count = 0;
    (void)!::read(core_->in_wake->get(), &count, sizeof count);
}

int Waitable::fileno() { return connection_ ? connection_->fileno() : fd_; }

bool Waitable::ready() {
    if (connection_) return connection_->poll();
    pollfd entry{fd_, POLLIN, 0};
    return ::poll(&entry, 1, 0) > 0;
}

std::vector<std::size_t> wait(std::span<Waitable> objects, std::optional<std::chrono::nanoseconds> timeout) {
    const auto deadline = timeout ? Deadline::after(*timeout) : Deadline::never();
    std::vector<pollfd> entries;
    for (auto& object : objects) entries.push_back({object.fileno(), POLLIN, 0});
    for (;;) {
        std::vector<std::size_t> ready;
        for (std::size_t i = 0; i < objects.size(); ++i)
            if (objects[i].ready()) ready.push_back(i);
        if (!ready.empty() || deadline.expired()) return ready;
        // A peer that dies cannot signal: look again on the liveness schedule, so its EOF is still seen.
        constexpr auto longest_ms = std::chrono::milliseconds(detail::longest_gap).count();
        auto wait_ms = longest_ms;
        if (!deadline.is_never()) {
            const auto left = deadline.at() - std::chrono::steady_clock::now();
            wait_ms = std::clamp<std::int64_t>(std::chrono::ceil<std::chrono::milliseconds>(left).count(), 0, longest_ms);
        }
        if (::poll(entries.data(), entries.size(), static_cast<int>(wait_ms)) < 0 && errno != EINTR)
            throw_os_error("poll", "wait");
        // A descriptor readable without a message (a stale signal) must not spin this loop.
        for (std::size_t i = 0; i < objects.size(); ++i)
            if ((entries[i].revents & POLLIN) && !objects[i].ready()) objects[i].drop_stale_signal();
    }
}

bool Connection::closed() const noexcept { return !core_ || core_->closed; }
bool Connection::readable() const noexcept { return core_ && (core_->in || core_->socket); }
bool Connection::writable() const noexcept { return core_ && (core_->out || core_->socket); }

void Connection::ipc_forked(bool in_child, std::uint32_t child) noexcept {
    if (!core_ || core_->closed || core_->socket) return;  // a forked child inherits the socket as it is
    if (in_child)
        core_->hold->become_forked_child();
    else
        core_->hold->add_forked_child(child);
}

void Connection::ipc_save(codec::Writer& writer) const {
    auto& c = core("send a Connection to a child");
    if (c.socket) {
        // No segment has an empty name: it marks a socket, which travels as a descriptor.
        codec::save(writer, std::string());
        codec::save(writer, c.socket->what());
        codec::save(writer, static_cast<std::uint64_t>(c.socket->max_message()));
        writer.write_descriptor(c.socket->fd(), "a Connection");
        return;
    }
    codec::save(writer, c.segment->name());
    codec::save(writer, c.end);
    codec::save(writer, c.in_wake != nullptr);
    if (c.in_wake) writer.write_descriptor(c.in_wake->get(), "a Connection");
    codec::save(writer, c.out_wake != nullptr);
    if (c.out_wake) writer.write_descriptor(c.out_wake->get(), "a Connection");
    codec::save(writer, c.in_space != nullptr);
    if (c.in_space) writer.write_descriptor(c.in_space->get(), "a Connection");
    codec::save(writer, c.out_space != nullptr);
    if (c.out_space) writer.write_descriptor(c.out_space->get(), "a Connection");
}

Connection Connection::ipc_load(codec::Reader& reader) {
    const auto name = codec::load<std::string>(reader);
    if (name.empty()) {
        auto what = codec::load<std::string>(reader);
        const auto max_message = codec::load<std::uint64_t>(reader);
        detail::Fd socket(::fcntl(reader.read_descriptor(), F_DUPFD_CLOEXEC, 0));
        if (!socket) throw_os_error("duplicate the socket of", what);
        return detail::SocketConnections::make(std::move(socket), std::move(what), max_message);
    }
    auto segment = detail::Segment::open(name, detail::Kind::pipe, {});
    const int end = codec::load<int>(reader);
    if (end != 0 && end != 1) throw CodecError("a Connection's end must be 0 or 1, not " + std::to_string(end));
    detail::WakeFd in_wake, out_wake, in_space, out_space;
    if (codec::load<bool>(reader)) in_wake = detail::duplicate_wake_fd(reader.read_descriptor());
    if (codec::load<bool>(reader)) out_wake = detail::duplicate_wake_fd(reader.read_descriptor());
    if (codec::load<bool>(reader)) in_space = detail::duplicate_wake_fd(reader.read_descriptor());
    if (codec::load<bool>(reader)) out_space = detail::duplicate_wake_fd(reader.read_descriptor());
    return Connection(
        std::make_shared<detail::ConnectionCore>(std::move(segment), end, in_wake, out_wake, in_space, out_space));
}

Connection detail::SocketConnections::make(Fd socket, std::string what, std::size_t max_message) {
    return Connection(std::make_shared<ConnectionCore>(
        std::make_unique<SocketChannel>(std::move(socket), std::move(what), max_message)));
}

// Loans and views.

Loan::Loan(std::shared_ptr<detail::ConnectionCore> core, std::size_t size)
    : core_(std::move(core)), own_(size), data_(own_.data()), size_(size) {}

Loan& Loan::operator=(Loan&& other) noexcept {
    if (this == &other) return *this;
    cancel();
    core_ = std::move(other.core_);
    ring_ = std::exchange(other.ring_, nullptr);
    loan_ = other.loan_;
    own_ = std::move(other.own_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    return *this;
}

void Loan::cancel() noexcept {
    if (ring_ != nullptr) detail::ring_cancel_loan(*std::exchange(ring_, nullptr), loan_);
    own_ = {};
    data_ = nullptr;
    size_ = 0;
}

Loan Connection::loan_general(std::size_t size) {
    auto& c = core("send");
    if (c.socket) return Loan(core_, size);
    if (!c.out) throw OSError("send on " + c.what(), "", "connection is read-only", EBADF);
    if (!c.peers_alive()) throw BrokenPipeError("loan", c.what() + " (every reader is gone)", EPIPE);
    detail::RingLoan loan;
    switch (detail::ring_lend(*c.out, size, Deadline::never(), c.peers, loan)) {
        case RingResult::done: return Loan(core_, &*c.out, loan);
        case RingResult::peer_gone: throw BrokenPipeError("loan", c.what() + " (every reader is gone)", EPIPE);
        case RingResult::shut_down: throw_shut_down_pipe(c);
        case RingResult::timed_out: break;
    }
    throw TimeoutError("loan on " + c.what() + " timed out");
}

void Connection::send_loan_general(Loan&& loan, std::size_t size) {
    Loan taken = std::move(loan);  // the loan ends here whatever happens; unsent, its room goes back
    auto& c = core("send");
    if (taken.core_ != core_)
        throw ValueError("send of a Loan on " + c.what() + ": the loan is " +
                         (taken.core_ ? "of another Connection" : "empty (sent, or moved from, already)"));
    if (size > taken.size())
        throw ValueError("send of a Loan on " + c.what() + ": " + std::to_string(size) + " bytes, more than the loan's " +
                         std::to_string(taken.size()));
    if (c.socket) {
        send_general(detail::MessageParts{taken.bytes().first(size)}, true);
        return;
    }
    const auto* ring = std::exchange(taken.ring_, nullptr);
    if (detail::ring_publish_loan(*ring, taken.loan_, size)) detail::signal_wake(c.out_wake);
}

MessageView::MessageView(std::vector<std::byte> copy) noexcept
    : copy_(std::move(copy)), data_(copy_.data()), size_(copy_.size()) {}

MessageView& MessageView::operator=(MessageView&& other) noexcept {
    if (this == &other) return *this;
    release();
    core_ = std::move(other.core_);
    ring_ = std::exchange(other.ring_, nullptr);
    view_ = other.view_;
    copy_ = std::move(other.copy_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    return *this;
}

void MessageView::signal_after_release() noexcept {
    // Someone polls this end, or a sender may wait in an event loop for room: tell them.
    if (core_ && core_->in) after_receive(*core_, true);
}

void MessageView::release_general() noexcept {
    if (ring_ != nullptr) {
        const bool woke_senders = detail::ring_release_view(*std::exchange(ring_, nullptr), view_);
        if (core_ && core_->in) after_receive(*core_, woke_senders);
    }
    core_.reset();
    copy_ = {};
    data_ = nullptr;
    size_ = 0;
}

MessageView Connection::recv_view_general(std::optional<std::size_t> maxlength) {
    auto& c = core("recv");
    const auto max_size = maxlength.value_or(no_limit);
    if (c.socket) {
        const auto message = *receive_general(max_size, true);
        return MessageView(std::vector<std::byte>(message.begin(), message.end()));
    }
    if (!c.in) throw OSError("recv on " + c.what(), "", "connection is write-only", EBADF);
    std::vector<std::byte> copy;
    detail::RingView view;
    const auto received = detail::ring_receive_view(*c.in, copy, view, Deadline::never(), c.peers, max_size);
    if (view.data != nullptr) {
        MessageView in_place(core_, &*c.in, view);
        check_received(c, received, max_size);
        return in_place;
    }
    check_received(c, received, max_size);
    return MessageView(std::move(copy));
}

}  // namespace ipc
