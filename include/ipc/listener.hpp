// ipc/listener.hpp — Python's multiprocessing.connection.Listener and Client: unrelated programs meet
// at a Unix-domain socket address and each side gets a shared-memory Connection (the socket is only
// the rendezvous), or at a TCP address, where the Connection carries its messages over the socket.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "ipc/connection.hpp"
#include "ipc/detail/deadline.hpp"

namespace ipc {

namespace detail {
class Handshakes;
}

/// A TCP address, as Python's ('host', port) tuple (family 'AF_INET' or 'AF_INET6'): the host is a
/// numeric IPv4 or IPv6 address ("127.0.0.1", "::1") or a name to resolve ("localhost"); an empty
/// host is every local address. Port 0 lets the Listener pick a free port (see Listener::address()).
/// As a string, anywhere an address is taken: "tcp://127.0.0.1:6000", "tcp://[::1]:6000".
struct TcpAddress {
    std::string host;
    std::uint16_t port = 0;
    friend bool operator==(const TcpAddress&, const TcpAddress&) = default;
};
/// The string form: "tcp://host:port", with brackets round an IPv6 host.
std::string to_string(const TcpAddress& address);

/// Frames longer than this are refused by a TCP Connection's receiver (Connection over TCP).
inline constexpr std::size_t default_max_message = std::size_t{1} << 30;

/// Addresses are Unix-domain socket addresses, as Python's family 'AF_UNIX':
///  - a filesystem path ("/run/app.sock"; at most 107 bytes), removed again when the Listener closes;
///  - a Linux abstract name, written "@name" (the usual Linux spelling) or, as Python does, with a
///    leading '\0'. Abstract names need no file and vanish with the last socket. A file whose name
///    starts with '@' is written "./@name", one that starts with "tcp://" "./tcp://...";
/// or TCP addresses, "tcp://host:port" or a TcpAddress (see there).
struct ListenerOptions {
    int backlog = 1;                      ///< clients that may wait for accept() (Python's default: 1)
    std::optional<std::string> authkey = {};  ///< when set, every client must prove it knows these bytes
    /// How long accept() gives a client that connected to finish the handshake; a client that says
    /// nothing, too little or garbage costs the Listener no more than this.
    std::chrono::milliseconds handshake_timeout = std::chrono::seconds(5);
    std::size_t capacity = std::size_t{1} << 20;  ///< ring bytes per direction of each accepted Connection
    /// Over TCP: the longest message an accepted Connection receives. A longer frame is an Error
    /// that names it, and the Connection cannot be read any further (before a byte of it is kept).
    std::size_t max_message = default_max_message;
};

struct ClientOptions {
    std::optional<std::string> authkey = {};  ///< must match the Listener's: both have none, or both the same
    /// How long to wait for the Listener to accept (a full backlog, a busy server); none: as long
    /// as the Listener lives, as Python's Client does.
    std::optional<std::chrono::milliseconds> timeout = {};
    /// Once the Listener has accepted, how long the rest of the handshake may take.
    std::chrono::milliseconds handshake_timeout = std::chrono::seconds(5);
    /// Over TCP: the longest message the Connection receives (see ListenerOptions::max_message).
    std::size_t max_message = default_max_message;
};

/// Who connected (Listener::last_accepted): the peer's credentials as the kernel saw them at
/// connect(), and its socket address as Python reports it (empty for a client, which binds none).
/// Over TCP the credentials are unknown (all 0) and the address is the client's "tcp://host:port".
struct Peer {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    std::string address = {};
};

/// A listening socket. Each accept() hands the client one end of a fresh duplex Pipe and returns
/// the other end. A client that fails the handshake makes that accept() throw (AuthenticationError,
/// EOFError, TimeoutError); the Listener stays usable for the next one. Handshakes run side by side
/// (up to 64 at once, on threads of the Listener): a client that connects and says nothing delays
/// no other, and accept() returns the handshakes in the order they end.
class Listener {
public:
    /// Listens on a fresh abstract address (see address()), as Python's Listener() does.
    Listener();
    explicit Listener(std::string address, ListenerOptions options = {});
    /// Listens on TCP, with SO_REUSEADDR, as Python's Listener(('host', port)).
    explicit Listener(const TcpAddress& address, ListenerOptions options = {});
    /// Python's Listener(address, backlog=1, authkey=None).
    Listener(std::string address, int backlog, std::optional<std::string> authkey = {});
    ~Listener();
    Listener(Listener&& other) noexcept;
    Listener& operator=(Listener&& other) noexcept;
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    /// Waits for a client, runs the handshake and returns this side's Connection.
    Connection accept() { return accept_until(detail::Deadline::never()); }
    /// The same, giving up with TimeoutError when no client came within `timeout`.
    template <class Rep, class Period>
    Connection accept(std::chrono::duration<Rep, Period> timeout) {
        return accept_until(detail::deadline_after(timeout));
    }

    /// Stops listening and removes the socket file (only in the process that created the Listener,
    /// and only if the file is still its socket). Connections already accepted stay open.
    void close() noexcept;
    [[nodiscard]] bool closed() const noexcept { return fd_ < 0; }
    /// The address as given (or as generated by Listener()). Over TCP, the bound one in the string
    /// form, with the real port: "tcp://127.0.0.1:41203", which Client() takes.
    [[nodiscard]] const std::string& address() const noexcept { return address_; }
    /// Over TCP, the bound address (the real port); nothing on a Unix-domain socket.
    [[nodiscard]] const std::optional<TcpAddress>& tcp_address() const noexcept { return tcp_; }
    /// Python's Listener.family: "AF_UNIX", "AF_INET" or "AF_INET6".
    [[nodiscard]] std::string family() const;
    /// The peer of the last accept(), also of one whose handshake failed; empty before the first.
    [[nodiscard]] const std::optional<Peer>& last_accepted() const noexcept { return last_accepted_; }
    /// The listening socket: readable when a client waits, for poll(2), ipc::wait or Boost.Asio.
    [[nodiscard]] int fileno() const;

private:
    Connection accept_until(const detail::Deadline& deadline);
    void listen_tcp(const std::string& host, std::uint16_t port);

    std::string address_;
    std::optional<TcpAddress> tcp_;  // set when listening on TCP
    int family_ = 0;                 // AF_UNIX, AF_INET, AF_INET6
    ListenerOptions options_;
    int fd_ = -1;
    pid_t creator_ = 0;
    // The socket file we bound (absolute path, device and inode), so close() removes it only while
    // it is still ours.
    std::string path_;
    std::optional<std::pair<dev_t, ino_t>> file_;
    std::optional<Peer> last_accepted_;
    std::unique_ptr<detail::Handshakes> handshakes_;  // made by the first accept()
};

/// Connects to the Listener at `address` and returns this side's Connection. Nothing there is a
/// FileNotFoundError (a path) or ConnectionRefusedError (an abstract name, a socket file left by a
/// Listener that died, a TCP port nobody listens on); a handshake the two sides disagree on is an
/// AuthenticationError.
Connection Client(const std::string& address, ClientOptions options = {});
/// Connects over TCP (TCP_NODELAY), as Python's Client(('host', port)).
Connection Client(const TcpAddress& address, ClientOptions options = {});
/// Python's Client(address, authkey=...).
Connection Client(const std::string& address, std::string authkey);

}  // namespace ipc
