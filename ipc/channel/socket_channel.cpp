// channel/socket_channel.cpp — length-prefixed frames on a stream socket, for Connections that cross
// machines (socket_channel.hpp). Every wait is a poll(2) with the caller's deadline; no SIGPIPE.
#include "channel/socket_channel.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>

#include "ipc/error.hpp"

namespace ipc::detail {

namespace {

/// poll(2) on `fd` until `deadline` (forever for never()); false when it passed first.
bool wait_for(int fd, short events, const Deadline& deadline, const std::string& what) {
    if (deadline.is_never()) return poll_for(fd, events, std::chrono::nanoseconds(-1), what.c_str());
    const auto left = deadline.at() - std::chrono::steady_clock::now();
    return poll_for(fd, events, std::max(left, std::chrono::nanoseconds(0)), what.c_str());
}

// The body grows by at least this much, or doubles, as bytes arrive.
constexpr std::size_t body_step = std::size_t{64} << 10;

}  // namespace

SocketChannel::SocketChannel(Fd socket, std::string what, std::size_t max_message)
    : socket_(std::move(socket)), what_(std::move(what)), max_message_(max_message) {}

void SocketChannel::close() noexcept {
    if (std::try_lock(send_mutex_, receive_mutex_) == -1) {
        socket_.reset();
        send_mutex_.unlock();
        receive_mutex_.unlock();
        return;
    }
    // Another thread waits on the socket, and a descriptor closed under poll(2) would not wake it:
    // shut the connection down instead (for every process that holds it); the descriptor goes
    // with the last handle of this Connection.
    ::shutdown(socket_.get(), SHUT_RDWR);
}

bool SocketChannel::send(const MessageParts& message, bool block) {
    std::lock_guard lock(send_mutex_);
    std::uint64_t size = message_size(message);
    std::array<std::byte, header_size> header{};
    for (auto& byte : header) {
        byte = static_cast<std::byte>(size & 0xff);
        size >>= 8;
    }
    std::array<iovec, 4> parts{};
    std::size_t count = 0;
    parts[count++] = {header.data(), header.size()};
    for (const auto& part : message)
        if (!part.empty()) parts[count++] = {const_cast<std::byte*>(part.data()), part.size()};
    std::size_t first = 0;  // parts before it went out whole
    bool started = false;
    while (first < count) {
        msghdr out{};
        out.msg_iov = parts.data() + first;
        out.msg_iovlen = count - first;
        const ssize_t sent = ::sendmsg(socket_.get(), &out, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent >= 0) {
            started = true;
            auto left = static_cast<std::size_t>(sent);
            while (first < count && left >= parts[first].iov_len) left -= parts[first++].iov_len;
            if (first < count) {
                parts[first].iov_base = static_cast<std::byte*>(parts[first].iov_base) + left;
                parts[first].iov_len -= left;
            }
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!block && !started) return false;
            (void)wait_for(socket_.get(), POLLOUT, Deadline::never(), what_);
        } else if (errno == EPIPE || errno == ECONNRESET) {
            throw BrokenPipeError("send", what_ + " (the peer closed the connection)", errno);
        } else if (errno != EINTR) {
            throw_os_error("send on", what_);
        }
    }
    return true;
}

bool SocketChannel::advance(const Deadline& deadline) {
    std::span<std::byte> target;
    if (!header_done()) {
        target = std::span(header_).subspan(header_got_);
    } else {
        if (body_.size() == body_got_)
            body_.resize(body_got_ + std::min<std::uint64_t>(length_ - body_got_, std::max(body_step, body_.size())));
        target = std::span(body_).subspan(body_got_);
    }
    const ssize_t got = ::recv(socket_.get(), target.data(), target.size(), MSG_DONTWAIT);
    if (got > 0) {
        if (!header_done()) {
            header_got_ += static_cast<std::size_t>(got);
            if (!header_done()) return true;
            length_ = 0;
            for (std::size_t i = header_size; i-- > 0;) length_ = (length_ << 8) | std::to_integer<std::uint64_t>(header_[i]);
            if (length_ > max_message_)
                broken_ = what_ + ": the peer sent a frame of " + std::to_string(length_) + " bytes, more than the " +
                          std::to_string(max_message_) +
                          " a message may have here (max_message); the connection cannot be read any further";
            body_.clear();
            body_got_ = 0;
        } else {
            body_got_ += static_cast<std::size_t>(got);
        }
        return true;
    }
    if (got == 0 || errno == ECONNRESET) {
        end_of_file_ = true;
        return true;
    }
    if (errno == EINTR) return true;
    if (errno != EAGAIN && errno != EWOULDBLOCK) throw_os_error("recv on", what_);
    if (deadline.expired()) return false;
    return wait_for(socket_.get(), POLLIN, deadline, what_);
}

void SocketChannel::raise_stop() const {
    if (broken_) throw Error(*broken_);
    if (header_got_ == 0)
        throw EOFError("recv on " + what_ + ": end of file (the peer closed the connection)");
    const auto have = header_got_ + body_got_;
    const auto want = header_done() ? header_size + length_ : header_size;
    throw EOFError("recv on " + what_ + ": the peer closed the connection in the middle of a message (" +
                   std::to_string(have) + " of " + std::to_string(want) + " bytes of its frame came)");
}

bool SocketChannel::receive(std::vector<std::byte>& out, std::size_t max_size, const Deadline& deadline) {
    std::lock_guard lock(receive_mutex_);
    for (;;) {
        if (broken_) raise_stop();
        if (header_done() && length_ > max_size)
            throw BufferTooShort("recv on " + what_ + ": the message has " + std::to_string(length_) +
                                     " bytes, more than the " + std::to_string(max_size) +
                                     " allowed; it stays in the connection",
                                 length_);
        if (frame_done()) {
            body_.resize(length_);
            out.swap(body_);
            body_.clear();
            header_got_ = body_got_ = 0;
            return true;
        }
        if (end_of_file_) raise_stop();
        if (!advance(deadline)) return false;
    }
}

bool SocketChannel::poll(const Deadline& deadline) {
    std::lock_guard lock(receive_mutex_);
    for (;;) {
        if (frame_done() || end_of_file_ || broken_) return true;
        if (!advance(deadline)) return false;
    }
}

}  // namespace ipc::detail
