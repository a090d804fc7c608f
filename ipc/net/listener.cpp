// net/listener.cpp — Listener and Client: the Unix-domain socket that only brings two processes together;
// what they say on it is in handshake.cpp, and what they then talk over is a Pipe in shared memory.
#include "ipc/listener.hpp"

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

std::string peer_address(const sockaddr_un& address, socklen_t length) {
    const auto offset = offsetof(sockaddr_un, sun_path);
    if (length <= offset) return {};  // an unbound client, the usual case
    std::string name(address.sun_path, length - offset);
    if (name[0] != '\0') name.resize(std::strlen(name.c_str()));
    return name;
}

/// Who connected on `client`: its credentials as the kernel saw them at connect(), and its address.
Peer peer_of(int client, const sockaddr_un& address, socklen_t length) {
    Peer peer;
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


}  // namespace

Listener::Listener() : Listener(generated_address()) {}

Listener::Listener(std::string address, int backlog, std::optional<std::string> authkey)
    : Listener(std::move(address), ListenerOptions{.backlog = backlog, .authkey = std::move(authkey)}) {}

Listener::Listener(std::string address, ListenerOptions options) : address_(std::move(address)), options_(std::move(options)) {
    const auto socket_address = parse_address(address_, "Listener");
    if (options_.backlog < 0) throw ValueError("Listener: the backlog must not be negative");
    check_authkey(options_.authkey, "Listener");
    check_handshake_timeout(options_.handshake_timeout, "Listener");
    (void)detail::RingState::capacity_for(options_.capacity, "Listener");  // a bad capacity fails here, not in accept()

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

Listener::~Listener() { close(); }

Listener::Listener(Listener&& other) noexcept
    : address_(std::move(other.address_)),
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
            sockaddr_un address{};
            socklen_t length = sizeof address;
            detail::Fd client(::accept4(fd_, reinterpret_cast<sockaddr*>(&address), &length, SOCK_CLOEXEC));
            if (!client) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                if (errno == EINTR || errno == ECONNABORTED) continue;
                throw_os_error("accept on Listener", printable(address_));
            }
            auto peer = peer_of(client.get(), address, length);
            auto what = "accept on Listener '" + printable(address_) + "' (client pid " + std::to_string(peer.pid) + ")";
            handshakes_->start(std::move(client), std::move(what), options_, std::move(peer));
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

Connection Client(const std::string& address, ClientOptions options) {
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
    return detail::handshake_as_client(fd.get(), "Client of Listener '" + printable(address) + "'", options, accepted_by);
}

Connection Client(const std::string& address, std::string authkey) {
    return Client(address, ClientOptions{.authkey = std::move(authkey)});
}

}  // namespace ipc
