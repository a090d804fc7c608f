// channel/socket_channel.hpp — a Connection's transport over a stream socket (a TCP Listener/Client):
// messages as frames, an 8-byte little-endian length then the bytes, since shared memory does not
// cross machines. Private to the library.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ipc/connection.hpp"
#include "ipc/detail/deadline.hpp"
#include "ipc/detail/ring.hpp"
#include "sys/fd.hpp"

namespace ipc::detail {

/// One end of a connected stream socket. Sends and receives each hold a lock of their own, so
/// threads never interleave frames. A frame is read into a pending buffer that grows with what
/// arrives (a peer that only announces a huge length costs nothing), and stays there while a
/// receive refuses it as too long (BufferTooShort) or times out.
class SocketChannel {
public:
    static constexpr std::size_t header_size = 8;

    /// `what` names the connection in errors; frames longer than `max_message` are refused.
    SocketChannel(Fd socket, std::string what, std::size_t max_message);

    /// Sends one frame, waiting for room as long as it takes. Without `block`, false when the
    /// socket takes nothing now; once its first byte went, the frame is finished (waiting if need be).
    bool send(const MessageParts& message, bool block);
    /// The next frame into `out` (swapped in): false when `deadline` passed first. EOFError when
    /// the peer closed (also mid-frame), BufferTooShort when longer than `max_size` (it stays).
    bool receive(std::vector<std::byte>& out, std::size_t max_size, const Deadline& deadline);
    /// True when receive() would not block: a whole frame waits, or end of file, or an error.
    bool poll(const Deadline& deadline);

    [[nodiscard]] int fd() const noexcept { return socket_.get(); }
    [[nodiscard]] const std::string& what() const noexcept { return what_; }
    [[nodiscard]] std::size_t max_message() const noexcept { return max_message_; }
    /// Closes the socket; while another thread of this process waits on it, shuts it down instead.
    void close() noexcept;

private:
    // With receive_mutex_ held.
    [[nodiscard]] bool header_done() const noexcept { return header_got_ == header_size; }
    [[nodiscard]] bool frame_done() const noexcept { return header_done() && body_got_ == length_; }
    /// One step toward the next frame: reads what the socket has, or waits for it until `deadline`.
    /// False when the deadline passed; end of file and errors are recorded for raise_stop().
    bool advance(const Deadline& deadline);
    [[noreturn]] void raise_stop() const;

    Fd socket_;
    std::string what_;
    std::size_t max_message_;
    std::mutex send_mutex_;
    std::mutex receive_mutex_;
    std::array<std::byte, header_size> header_{};
    std::size_t header_got_ = 0;
    std::uint64_t length_ = 0;
    std::vector<std::byte> body_;
    std::size_t body_got_ = 0;
    bool end_of_file_ = false;            // the peer closed (or reset) the connection
    std::optional<std::string> broken_;  // a frame we refuse: the stream cannot be read on
};

/// Makes Connections over a socket (Connection's constructor is private to it and this).
struct SocketConnections {
    static Connection make(Fd socket, std::string what, std::size_t max_message);
};

}  // namespace ipc::detail
