// net/listener.cpp — Listener and Client: the Unix-domain socket that only brings two processes together;
// what they say on it is in handshake.cpp, and what they then talk over is a Pipe in shared memory.
// Over TCP the same, except that the socket stays and carries the messages (channel/socket_channel).
#include "ipc/listener.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>

#include "ipc/detail/ring.hpp"
#include "sys/fd.hpp"
#include "net/handshake.hpp"
#include "net/handshakes.hpp"

namespace ipc {

namespace {

constexpr std::size_t max_address = sizeof(sockaddr_un::sun_path) - 1;  // 107: a path needs its NUL

/// The address as people write it: an abstract name with '@' in front instead of a NUL.
std::string printable(const std::string& address) {
    if (!address.empty() && address[0] == '\0') return '@' + address.substr(1);
    return address;
}

struct SocketAddress {
    sockaddr_un storage{};
    socklen_t length = 0;
    bool abstract = false;

    [[nodiscard]] const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
};

SocketAddress parse_address(const std::string& address, const char* who) {
    if (address.empty()) throw ValueError(std::string(who) + ": the address is empty");
    SocketAddress result;
    result.storage.sun_family = AF_UNIX;
    result.abstract = address[0] == '\0' || address[0] == '@';
    const std::string_view name = result.abstract ? std::string_view(address).substr(1) : std::string_view(address);
    if (result.abstract && name.empty()) throw ValueError(std::string(who) + ": the abstract address '@' has no name");
    if (!result.abstract && name.find('\0') != std::string_view::npos)
        throw ValueError(std::string(who) + ": the path '" + printable(address) + "' holds a NUL byte");
    if (name.size() > max_address)
        throw ValueError(std::string(who) + ": the address '" + printable(address) + "' is " + std::to_string(name.size()) +
                         " bytes long; a Unix socket " + (result.abstract ? "name" : "path") + " holds at most " +
                         std::to_string(max_address));
    // An abstract name starts with a NUL and is exactly as long as the length says; a path ends with one.
    const std::size_t start = result.abstract ? 1 : 0;
    std::memcpy(result.storage.sun_path + start, name.data(), name.size());
    result.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + start + name.size() + (result.abstract ? 0 : 1));
    return result;
}

constexpr std::string_view tcp_prefix = "tcp://";

/// "tcp://host:port" (IPv6 hosts in brackets) as a TcpAddress; nothing for any other address.
std::optional<TcpAddress> parse_tcp(const std::string& address, const char* who) {
    if (address.rfind(tcp_prefix, 0) != 0) return std::nullopt;
    const std::string_view rest = std::string_view(address).substr(tcp_prefix.size());
    const auto bad = [&](const std::string& why) -> ValueError {
        return ValueError(std::string(who) + ": the TCP address '" + address + "' " + why +
                          " (write tcp://host:port, tcp://[v6-address]:port)");
    };
    std::string_view host, port;
    if (!rest.empty() && rest[0] == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
            throw bad("has no ']:' after its IPv6 host");
        host = rest.substr(1, close - 1);
        port = rest.substr(close + 2);
    } else {
        const auto colon = rest.rfind(':');
        if (colon == std::string_view::npos) throw bad("has no port");
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) throw bad("has an IPv6 host without brackets");
    }
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
        std::stoul(std::string(port)) > 65535)
        throw bad("has no port number from 0 to 65535");
    return TcpAddress{std::string(host), static_cast<std::uint16_t>(std::stoul(std::string(port)))};
}

/// The numeric host and port of an AF_INET or AF_INET6 socket address.
TcpAddress tcp_address_of(const sockaddr_storage& address) {
    char host[INET6_ADDRSTRLEN] = "";
    std::uint16_t port = 0;
    if (address.ss_family == AF_INET6) {
        const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
        ::inet_ntop(AF_INET6, &v6.sin6_addr, host, sizeof host);
        port = ntohs(v6.sin6_port);
    } else {
        const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
        ::inet_ntop(AF_INET, &v4.sin_addr, host, sizeof host);
        port = ntohs(v4.sin_port);
    }
    return {host, port};
}

using AddressList = std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)>;

/// The socket addresses of `address` (a name may have several); `passive` for bind().
AddressList resolve(const TcpAddress& address, bool passive, const char* who) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    addrinfo* found = nullptr;
    const auto port = std::to_string(address.port);
    const int result = ::getaddrinfo(address.host.empty() ? nullptr : address.host.c_str(), port.c_str(), &hints, &found);
    if (result == EAI_SYSTEM) throw_os_error(std::string(who) + ": resolve", to_string(address));
    if (result != 0)
        throw Error(std::string(who) + ": resolve '" + to_string(address) + "': " + ::gai_strerror(result));
    return {found, &::freeaddrinfo};
}

/// Messages go out at once, not after the next one (Nagle's algorithm would hold small ones back).
void no_delay(int socket) {
    const int one = 1;
    ::setsockopt(socket, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

std::string peer_address(const sockaddr_un& address, socklen_t length) {
    const auto offset = offsetof(sockaddr_un, sun_path);
    if (length <= offset) return {};  // an unbound client, the usual case
    std::string name(address.sun_path, length - offset);
    if (name[0] != '\0') name.resize(std::strlen(name.c_str()));
    return name;
}

/// Who connected on `client`: its credentials as the kernel saw them at connect(), and its address.
/// Over TCP there are no credentials to ask for.
Peer peer_of(int client, const sockaddr_storage& storage, socklen_t length) {
    Peer peer;
    if (storage.ss_family == AF_INET || storage.ss_family == AF_INET6) {
        peer.address = to_string(tcp_address_of(storage));
        return peer;
    }
    const auto& address = reinterpret_cast<const sockaddr_un&>(storage);
    ucred credentials{};
    socklen_t size = sizeof credentials;
    if (::getsockopt(client, SOL_SOCKET, SO_PEERCRED, &credentials, &size) == 0) {
        peer.pid = credentials.pid;
        peer.uid = credentials.uid;
        peer.gid = credentials.gid;
    }
    peer.address = peer_address(address, length);
    return peer;
}

std::string generated_address() {
    static std::atomic<unsigned> counter{0};
    std::array<std::byte, 6> random{};
    detail::random_bytes(random);
    std::string address = "@ipc-listener-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + "-";
    for (auto byte : random) {
        constexpr char hex[] = "0123456789abcdef";
        address += hex[std::to_integer<unsigned>(byte) >> 4];
        address += hex[std::to_integer<unsigned>(byte) & 15];
    }
    return address;
}

void check_authkey(const std::optional<std::string>& authkey, const char* who) {
    if (authkey && authkey->empty()) throw ValueError(std::string(who) + ": an empty authkey authenticates nothing");
}

void check_handshake_timeout(std::chrono::milliseconds timeout, const char* who) {
    if (timeout <= std::chrono::milliseconds(0))
        throw ValueError(std::string(who) + ": the handshake timeout must be positive, not " + std::to_string(timeout.count()) +
                         " ms");
}

void check_max_message(std::size_t max_message, const char* who) {
    if (max_message == 0) throw ValueError(std::string(who) + ": max_message must be positive");
}

}  // namespace

Listener::Listener() : Listener(generated_address()) {}

Listener::Listener(std::string address, int backlog, std::optional<std::string> authkey)
    : Listener(std::move(address), ListenerOptions{.backlog = backlog, .authkey = std::move(authkey)}) {}

Listener::Listener(const TcpAddress& address, ListenerOptions options) : Listener(to_string(address), std::move(options)) {}

Listener::Listener(std::string address, ListenerOptions options) : address_(std::move(address)), options_(std::move(options)) {
    const auto tcp = parse_tcp(address_, "Listener");
    if (options_.backlog < 0) throw ValueError("Listener: the backlog must not be negative");
    check_authkey(options_.authkey, "Listener");
    check_handshake_timeout(options_.handshake_timeout, "Listener");
    check_max_message(options_.max_message, "Listener");
    (void)detail::RingState::capacity_for(options_.capacity, "Listener");  // a bad capacity fails here, not in accept()
    if (tcp) {
        listen_tcp(tcp->host, tcp->port);
        return;
    }
    const auto socket_address = parse_address(address_, "Listener");
    family_ = AF_UNIX;

    // Non-blocking, so that a client another process accepted first cannot block accept().
    detail::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) throw_os_error("socket for Listener", printable(address_));
    if (::bind(fd.get(), socket_address.get(), socket_address.length) < 0)
        throw_os_error("bind Listener to", printable(address_));
    creator_ = ::getpid();
    if (!socket_address.abstract) {
        // Remember which file is ours, by an absolute path: the working directory may change.
        std::error_code error;
        path_ = std::filesystem::absolute(address_, error).string();
        struct stat status {};
        if (error || ::stat(path_.c_str(), &status) < 0) path_.clear();
        else file_ = {status.st_dev, status.st_ino};
    }
    if (::listen(fd.get(), options_.backlog) < 0) {
        const int listen_error = errno;
        fd_ = fd.release();
        close();  // removes the file just bound
        throw_os_error("listen on", printable(address_), listen_error);
    }
    fd_ = fd.release();
}

void Listener::listen_tcp(const std::string& host, std::uint16_t port) {
    const auto addresses = resolve({host, port}, true, "Listener");
    int failure = EADDRNOTAVAIL;
    for (const auto* candidate = addresses.get(); candidate != nullptr; candidate = candidate->ai_next) {
        // Non-blocking, as the Unix one: a client that went away before accept() cannot block it.
        detail::Fd fd(::socket(candidate->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!fd) {
            failure = errno;
            continue;
        }
        // A port in TIME_WAIT from an earlier run may be bound again at once, as Python's Listener does.
        const int one = 1;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_storage bound{};
        socklen_t length = sizeof bound;
        if (::bind(fd.get(), candidate->ai_addr, candidate->ai_addrlen) < 0 || ::listen(fd.get(), options_.backlog) < 0 ||
            ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &length) < 0) {
            failure = errno;
            continue;
        }
        tcp_ = tcp_address_of(bound);
        address_ = to_string(*tcp_);
        family_ = candidate->ai_family;
        creator_ = ::getpid();
        fd_ = fd.release();
        return;
    }
    throw_os_error("bind Listener to", to_string({host, port}), failure);
}

std::string Listener::family() const {
    switch (family_) {
        case AF_INET: return "AF_INET";
        case AF_INET6: return "AF_INET6";
        default: return "AF_UNIX";
    }
}

Listener::~Listener() { close(); }

Listener::Listener(Listener&& other) noexcept
    : address_(std::move(other.address_)),
      tcp_(std::move(other.tcp_)),
      family_(other.family_),
      options_(std::move(other.options_)),
      fd_(std::exchange(other.fd_, -1)),
      creator_(other.creator_),
      path_(std::move(other.path_)),
      file_(std::exchange(other.file_, std::nullopt)),
      last_accepted_(std::move(other.last_accepted_)),
      handshakes_(std::move(other.handshakes_)) {
    other.path_.clear();
}

Listener& Listener::operator=(Listener&& other) noexcept {
    if (this != &other) {
        close();
        address_ = std::move(other.address_);
        tcp_ = std::move(other.tcp_);
        family_ = other.family_;
        options_ = std::move(other.options_);
        fd_ = std::exchange(other.fd_, -1);
        creator_ = other.creator_;
        path_ = std::move(other.path_);
        other.path_.clear();
        file_ = std::exchange(other.file_, std::nullopt);
        last_accepted_ = std::move(other.last_accepted_);
        handshakes_ = std::move(other.handshakes_);
    }
    return *this;
}

namespace {
/// A forked child inherits the Handshakes but none of their threads: it leaves them alone.
void drop_handshakes(std::unique_ptr<detail::Handshakes>& handshakes) noexcept {
    if (handshakes && handshakes->owner() != ::getpid()) (void)handshakes.release();
    handshakes.reset();  // ends the handshakes in flight
}
}  // namespace

void Listener::close() noexcept {
    if (fd_ < 0) return;
    drop_handshakes(handshakes_);
    ::close(std::exchange(fd_, -1));
    // As Python's Listener: the creating process removes its socket file, and a forked child that
    // inherited the Listener does not. A file that another Listener bound since is not ours to remove.
    struct stat status {};
    if (file_ && creator_ == ::getpid() && ::stat(path_.c_str(), &status) == 0 && S_ISSOCK(status.st_mode) &&
        status.st_dev == file_->first && status.st_ino == file_->second)
        ::unlink(path_.c_str());
    file_.reset();
}

int Listener::fileno() const {
    if (fd_ < 0) throw ValueError("fileno: the Listener at '" + printable(address_) + "' is closed");
    return fd_;
}

Connection Listener::accept_until(const detail::Deadline& deadline) {
    if (fd_ < 0) throw ValueError("accept: the Listener at '" + printable(address_) + "' is closed");
    if (handshakes_ && handshakes_->owner() != ::getpid()) drop_handshakes(handshakes_);
    if (!handshakes_) handshakes_ = std::make_unique<detail::Handshakes>();
    for (;;) {
        if (auto finished = handshakes_->take()) {
            last_accepted_ = finished->peer;
            if (finished->error) std::rethrow_exception(finished->error);
            return std::move(*finished->connection);
        }
        bool room = handshakes_->has_room();
        while (room) {
            sockaddr_storage address{};
            socklen_t length = sizeof address;
            detail::Fd client(::accept4(fd_, reinterpret_cast<sockaddr*>(&address), &length, SOCK_CLOEXEC));
            if (!client) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                if (errno == EINTR || errno == ECONNABORTED) continue;
                throw_os_error("accept on Listener", printable(address_));
            }
            auto peer = peer_of(client.get(), address, length);
            detail::Transport transport;
            std::string what;
            if (tcp_) {
                no_delay(client.get());
                what = "accept on Listener '" + address_ + "' (client " + peer.address + ")";
                transport = {true, "Connection from " + peer.address + " to Listener '" + address_ + "'"};
            } else {
                what = "accept on Listener '" + printable(address_) + "' (client pid " + std::to_string(peer.pid) + ")";
            }
            handshakes_->start(std::move(client), std::move(what), options_, std::move(peer), std::move(transport));
            room = handshakes_->has_room();
        }
        // New clients while there is room for their handshakes, and handshakes that end.
        pollfd entries[2] = {{handshakes_->ready_descriptor(), POLLIN, 0}, {room ? fd_ : -1, POLLIN, 0}};
        const auto left = detail::time_left(deadline);
        const int wait_ms =
            left.count() < 0 ? -1 : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
        const int ready = ::poll(entries, 2, wait_ms);
        if (ready < 0 && errno != EINTR) throw_os_error("poll on Listener", printable(address_));
        if (ready == 0 && deadline.expired())
            throw TimeoutError("accept on Listener '" + printable(address_) + "': no client came in time");
    }
}

std::string to_string(const TcpAddress& address) {
    const bool v6 = address.host.find(':') != std::string::npos;
    return std::string(tcp_prefix) + (v6 ? "[" : "") + address.host + (v6 ? "]" : "") + ":" + std::to_string(address.port);
}

Connection Client(const TcpAddress& address, ClientOptions options) {
    check_authkey(options.authkey, "Client");
    check_handshake_timeout(options.handshake_timeout, "Client");
    check_max_message(options.max_message, "Client");
    const auto accepted_by = options.timeout ? detail::Deadline::after(*options.timeout) : detail::Deadline::never();
    const auto name = to_string(address);
    const auto addresses = resolve(address, false, "Client");
    int failure = EADDRNOTAVAIL;
    detail::Fd fd;
    for (const auto* candidate = addresses.get(); candidate != nullptr && !fd; candidate = candidate->ai_next) {
        detail::Fd attempt(::socket(candidate->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!attempt) {
            failure = errno;
            continue;
        }
        // Non-blocking, so that options.timeout bounds the connect as well.
        int result = ::connect(attempt.get(), candidate->ai_addr, candidate->ai_addrlen);
        if (result < 0 && errno == EINPROGRESS) {
            if (!detail::poll_for(attempt.get(), POLLOUT, detail::time_left(accepted_by), "Client connect"))
                throw TimeoutError("Client: the Listener at '" + name + "' did not take the connection in time");
            socklen_t size = sizeof failure;
            ::getsockopt(attempt.get(), SOL_SOCKET, SO_ERROR, &failure, &size);
            result = failure == 0 ? 0 : -1;
        } else if (result < 0) {
            failure = errno;
        }
        if (result == 0) fd = std::move(attempt);
    }
    if (!fd) throw_os_error("Client: connect to Listener", name, failure);
    no_delay(fd.get());
    return detail::handshake_as_client(fd.get(), "Client of Listener '" + name + "'", options, accepted_by,
                                       {true, "Connection to Listener '" + name + "'"});
}

Connection Client(const std::string& address, ClientOptions options) {
    if (const auto tcp = parse_tcp(address, "Client")) return Client(*tcp, std::move(options));
    const auto socket_address = parse_address(address, "Client");
    check_authkey(options.authkey, "Client");
    check_handshake_timeout(options.handshake_timeout, "Client");
    const auto accepted_by = options.timeout ? detail::Deadline::after(*options.timeout) : detail::Deadline::never();

    detail::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw_os_error("socket for Client of", printable(address));
    if (options.timeout) {
        // connect() waits while the Listener's backlog is full; SO_SNDTIMEO bounds that wait.
        const auto left = std::chrono::duration_cast<std::chrono::microseconds>(detail::time_left(accepted_by));
        timeval limit{static_cast<time_t>(left.count() / 1'000'000), static_cast<suseconds_t>(left.count() % 1'000'000)};
        if (limit.tv_sec == 0 && limit.tv_usec == 0) limit.tv_usec = 1;  // zero would mean "forever"
        ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    }
    while (::connect(fd.get(), socket_address.get(), socket_address.length) < 0) {
        if (errno == EINTR) continue;
        if (errno == EISCONN) break;  // an interrupted connect() that went through meanwhile
        if (errno == EAGAIN || errno == EINPROGRESS)
            throw TimeoutError("Client: the Listener at '" + printable(address) + "' did not take the connection in time");
        throw_os_error("Client: connect to Listener", printable(address));
    }
    return detail::handshake_as_client(fd.get(), "Client of Listener '" + printable(address) + "'", options, accepted_by,
                                       {});
}

Connection Client(const std::string& address, std::string authkey) {
    return Client(address, ClientOptions{.authkey = std::move(authkey)});
}

}  // namespace ipc
