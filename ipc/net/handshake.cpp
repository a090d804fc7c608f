// net/handshake.cpp — the Listener/Client handshake. Every message is a frame: a 32-bit length, a type byte,
// a payload.
//
//   Listener                                  Client
//   hello (magic, version, auth?, challenge) →
//                                           ← ready | no_key | want_auth          (without an authkey)
//                                           ← digest = HMAC(key, "client" + challenge)  (with one)
//   verdict                                 →
//                                           ← challenge
//   digest = HMAC(key, "listener" + challenge) →
//                                           ← verdict
//   connection (one end of a new Pipe, its eventfds by SCM_RIGHTS) →
//                                           ← opened | failed
//
// Over TCP the connection message is empty: both sides go on to talk on this socket (frames of
// channel/socket_channel), the client once it sent "opened", the Listener once it read it.
//
// As in Python's deliver_challenge/answer_challenge, each side proves it knows the key without
// sending it, the Listener first, so a client without the key learns nothing the Listener computed.
// The role in each HMAC keeps a challenge reflected back from being answered by its own issuer.
// The Listener drops its copy of the client's end only after "opened": by then the client holds it
// (its pid is in the end's Holders), so end of file works both ways, also after a SIGKILL.
#include "net/handshake.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include <fcntl.h>

#include "channel/socket_channel.hpp"
#include "sys/fd.hpp"

namespace ipc::detail {

namespace {

constexpr std::array<char, 8> magic{'i', 'p', 'c', '-', 'l', 's', 't', 'n'};
constexpr std::uint32_t protocol_version = 1;
constexpr std::size_t challenge_size = 32;
constexpr std::size_t digest_size = 32;  // HMAC-SHA256
// Every handshake message is small: a larger length is garbage, refused before anything is allocated.
constexpr std::uint32_t max_message = 4096;
constexpr std::size_t hello_size = magic.size() + sizeof(std::uint32_t) + 1;

enum class Type : std::uint8_t { hello = 1, ready, no_key, want_auth, digest, verdict, challenge, connection, opened, failed };

std::string_view name_of(Type type) {
    switch (type) {
        case Type::hello: return "hello";
        case Type::ready: return "ready";
        case Type::no_key: return "no-key";
        case Type::want_auth: return "want-auth";
        case Type::digest: return "digest";
        case Type::verdict: return "verdict";
        case Type::challenge: return "challenge";
        case Type::connection: return "connection";
        case Type::opened: return "opened";
        case Type::failed: return "failed";
    }
    return "unknown";
}

using Digest = std::array<std::byte, digest_size>;

std::span<const std::byte> bytes_of(std::string_view text) { return std::as_bytes(std::span(text.data(), text.size())); }

std::string openssl_error() {
    char text[256] = "no OpenSSL error queued";
    if (const auto code = ::ERR_get_error()) ::ERR_error_string_n(code, text, sizeof text);
    return text;
}

/// The answer to `challenge` for a side in `role`: HMAC-SHA256 over role and challenge.
Digest answer(const std::string& key, std::string_view role, std::span<const std::byte> challenge) {
    if (key.size() > INT_MAX) throw ValueError("authkey: longer than OpenSSL's HMAC takes");
    std::vector<unsigned char> message(role.begin(), role.end());
    const auto* data = reinterpret_cast<const unsigned char*>(challenge.data());
    message.insert(message.end(), data, data + challenge.size());
    Digest digest{};
    unsigned int length = 0;
    if (!::HMAC(::EVP_sha256(), key.data(), static_cast<int>(key.size()), message.data(), message.size(),
                reinterpret_cast<unsigned char*>(digest.data()), &length) ||
        length != digest.size())
        throw Error("HMAC-SHA256 for the Listener handshake failed: " + openssl_error());
    return digest;
}

bool answer_is_right(const std::string& key, std::string_view role, std::span<const std::byte> challenge,
                     std::span<const std::byte> received) {
    const auto expected = answer(key, role, challenge);
    return received.size() == expected.size() && ::CRYPTO_memcmp(expected.data(), received.data(), expected.size()) == 0;
}

struct Message {
    Type type{};
    std::vector<std::byte> payload;
    std::vector<Fd> descriptors;
};

/// One side's socket during the handshake: frames in and out, every wait bounded by `deadline`.
class HandshakeSocket {
public:
    HandshakeSocket(int fd, const std::string& what, const Deadline& deadline) : fd_(fd), what_(what), deadline_(deadline) {}

    void set_deadline(const Deadline& deadline) { deadline_ = deadline; }
    /// Once the first byte arrives, the rest must come within `bound` (a Client waits as long as
    /// it may for the Listener to accept, but not for a greeting that stalls halfway).
    void bound_after_first_byte(std::chrono::nanoseconds bound) { bound_after_first_byte_ = bound; }

    void send(Type type, std::span<const std::byte> payload = {}, std::span<const int> descriptors = {}) {
        if (payload.size() >= max_message)
            throw ValueError(what_ + ": a " + std::string(name_of(type)) + " message too large for the handshake");
        const auto length = static_cast<std::uint32_t>(1 + payload.size());
        std::vector<std::byte> frame(sizeof length + 1);
        std::memcpy(frame.data(), &length, sizeof length);
        frame[sizeof length] = static_cast<std::byte>(type);
        frame.insert(frame.end(), payload.begin(), payload.end());
        std::span<const std::byte> rest = frame;
        while (!rest.empty()) {
            const ssize_t sent = send_with_descriptors(fd_, rest, descriptors, MSG_DONTWAIT);
            if (sent > 0) {
                descriptors = {};  // delivered with the first byte
                rest = rest.subspan(static_cast<std::size_t>(sent));
            } else if (errno == EAGAIN) {
                wait(POLLOUT, name_of(type));
            } else if (errno == EPIPE || errno == ECONNRESET) {
                peer_closed(name_of(type));
            } else if (errno != EINTR) {
                throw_os_error("handshake: send " + std::string(name_of(type)) + " on", what_);
            }
        }
    }

    /// The next message, which must be one of `expected`.
    Message receive(std::initializer_list<Type> expected) {
        const auto waiting_for = name_of(*expected.begin());
        std::uint32_t length = 0;
        Message message;
        read(std::as_writable_bytes(std::span(&length, 1)), message.descriptors, waiting_for);
        if (length == 0 || length > max_message)
            protocol_error("a message of " + std::to_string(length) + " bytes (at most " + std::to_string(max_message) +
                           ") where a " + std::string(waiting_for) + " was due");
        std::vector<std::byte> frame(length);
        read(frame, message.descriptors, waiting_for);
        message.type = static_cast<Type>(frame[0]);
        if (std::find(expected.begin(), expected.end(), message.type) == expected.end())
            protocol_error("message type " + std::to_string(static_cast<int>(frame[0])) + " where a " +
                           std::string(waiting_for) + " was due");
        message.payload.assign(frame.begin() + 1, frame.end());
        return message;
    }

    [[noreturn]] void protocol_error(const std::string& detail) const {
        throw AuthenticationError(what_ + ": protocol error: " + detail +
                                  " (the peer is not an ipc Listener/Client of handshake version " +
                                  std::to_string(protocol_version) + ")");
    }

    /// Tells the peer why we stop, as far as it still listens; the caller throws the reason.
    void try_send(Type type, std::span<const std::byte> payload = {}) noexcept {
        try {
            send(type, payload);
        } catch (const std::exception&) {
        }
    }

    [[nodiscard]] const std::string& what() const noexcept { return what_; }

private:
    void read(std::span<std::byte> data, std::vector<Fd>& descriptors, std::string_view waiting_for) {
        while (!data.empty()) {
            std::vector<int> received;
            const ssize_t got = receive_with_descriptors(fd_, data, received, MSG_DONTWAIT);
            for (int fd : received) descriptors.emplace_back(fd);  // owned, so closed on every path
            if (got > 0) {
                data = data.subspan(static_cast<std::size_t>(got));
                if (bound_after_first_byte_) {
                    deadline_ = deadline_.or_sooner(*bound_after_first_byte_);
                    bound_after_first_byte_.reset();
                }
            } else if (got == 0 || errno == ECONNRESET) {
                peer_closed(waiting_for);
            } else if (errno == EAGAIN) {
                wait(POLLIN, waiting_for);
            } else if (errno != EINTR) {
                throw_os_error("handshake: read on", what_);
            }
        }
    }

    void wait(short events, std::string_view message) {
        if (!poll_for(fd_, events, time_left(deadline_), "Listener handshake"))
            throw TimeoutError(what_ + ": the handshake timed out at the " + std::string(message) + " message");
    }

    [[noreturn]] void peer_closed(std::string_view message) const {
        throw EOFError(what_ + ": the peer closed the connection during the handshake (at the " + std::string(message) +
                       " message)");
    }

    int fd_;
    std::string what_;
    Deadline deadline_;
    std::optional<std::chrono::nanoseconds> bound_after_first_byte_;
};

std::array<std::byte, challenge_size> fresh_challenge() {
    std::array<std::byte, challenge_size> challenge{};
    random_bytes(challenge);
    return challenge;
}

std::span<const std::byte> verdict(bool ok) {
    static constexpr std::byte yes{1}, no{0};
    return {ok ? &yes : &no, 1};
}

bool accepted(const Message& message) { return message.payload.size() == 1 && message.payload[0] == std::byte{1}; }

/// A Connection on a duplicate of `socket` (the caller closes its own descriptor as before).
Connection over_socket(int socket, const Transport& transport, std::size_t max_message) {
    Fd copy(::fcntl(socket, F_DUPFD_CLOEXEC, 0));
    if (!copy) throw_os_error("duplicate the socket of", transport.name);
    return SocketConnections::make(std::move(copy), transport.name, max_message);
}

}  // namespace

std::chrono::nanoseconds time_left(const Deadline& deadline) {
    if (deadline.is_never()) return std::chrono::nanoseconds(-1);
    return std::max(std::chrono::nanoseconds(0), deadline.at() - std::chrono::steady_clock::now());
}

void random_bytes(std::span<std::byte> out) {
    if (out.size() > INT_MAX || ::RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size())) != 1)
        throw Error("random bytes for the Listener handshake: " + openssl_error());
}

Connection handshake_as_listener(int socket, const std::string& what, const ListenerOptions& options,
                                 const Transport& transport) {
    HandshakeSocket channel(socket, what, Deadline::after(options.handshake_timeout));
    const auto& key = options.authkey;

    std::vector<std::byte> hello(hello_size);
    std::memcpy(hello.data(), magic.data(), magic.size());
    std::memcpy(hello.data() + magic.size(), &protocol_version, sizeof protocol_version);
    hello[hello_size - 1] = std::byte{key ? std::uint8_t{1} : std::uint8_t{0}};
    std::array<std::byte, challenge_size> challenge{};
    if (key) {
        random_bytes(challenge);
        hello.insert(hello.end(), challenge.begin(), challenge.end());
    }
    channel.send(Type::hello, hello);

    const auto reply = channel.receive({Type::digest, Type::ready, Type::no_key, Type::want_auth});
    if (reply.type == Type::no_key)
        throw AuthenticationError(what + ": the client has no authkey, and this Listener requires one");
    if (reply.type == Type::want_auth)
        throw AuthenticationError(what +
                                  ": the client has an authkey, and this Listener has none (both sides need the same key)");
    if (key) {
        if (reply.type != Type::digest) channel.protocol_error("no answer to the challenge");
        const bool right = answer_is_right(*key, "client", challenge, reply.payload);
        channel.send(Type::verdict, verdict(right));
        if (!right) throw AuthenticationError(what + ": digest received was wrong (the client's authkey differs)");
        // Now the client makes sure that this Listener knows the key too.
        const auto theirs = channel.receive({Type::challenge});
        if (theirs.payload.size() != challenge_size) channel.protocol_error("a challenge of the wrong size");
        channel.send(Type::digest, answer(*key, "listener", theirs.payload));
        if (!accepted(channel.receive({Type::verdict})))
            throw AuthenticationError(what + ": the client rejected this Listener's answer to its challenge");
    } else if (reply.type != Type::ready) {
        channel.protocol_error("a digest, but this Listener sent no challenge");
    }

    if (transport.over_socket) {
        channel.send(Type::connection);
        (void)channel.receive({Type::opened});
        return over_socket(socket, transport, options.max_message);
    }
    auto [mine, theirs] = Pipe(true, options.capacity);
    std::vector<std::byte> payload;
    std::vector<int> descriptors;
    codec::Writer writer(payload, &descriptors);
    codec::save(writer, theirs);
    channel.send(Type::connection, payload, descriptors);
    const auto result = channel.receive({Type::opened, Type::failed});
    if (result.type == Type::failed) {
        const std::string reason(reinterpret_cast<const char*>(result.payload.data()), result.payload.size());
        throw Error(what + ": the client could not open the connection it was given: " + reason);
    }
    return mine;  // `theirs` goes now: the client holds that end
}

Connection handshake_as_client(int socket, const std::string& what, const ClientOptions& options,
                               const Deadline& accepted_by, const Transport& transport) {
    HandshakeSocket channel(socket, what, accepted_by);
    channel.bound_after_first_byte(options.handshake_timeout);
    const auto hello = channel.receive({Type::hello});
    channel.set_deadline(Deadline::after(options.handshake_timeout));
    const auto& payload = hello.payload;
    if (payload.size() < hello_size || std::memcmp(payload.data(), magic.data(), magic.size()) != 0)
        channel.protocol_error("a greeting without the Listener's magic");
    std::uint32_t version = 0;
    std::memcpy(&version, payload.data() + magic.size(), sizeof version);
    if (version != protocol_version)
        throw AuthenticationError(what + ": the Listener speaks handshake version " + std::to_string(version) +
                                  ", this Client version " + std::to_string(protocol_version));
    const bool listener_authenticates = payload[hello_size - 1] != std::byte{0};
    const auto& key = options.authkey;

    if (listener_authenticates) {
        if (payload.size() != hello_size + challenge_size) channel.protocol_error("a greeting of the wrong size");
        if (!key) {
            channel.try_send(Type::no_key);
            throw AuthenticationError(what + ": the Listener requires an authkey and none was given");
        }
        channel.send(Type::digest, answer(*key, "client", std::span(payload).subspan(hello_size)));
        if (!accepted(channel.receive({Type::verdict})))
            throw AuthenticationError(what + ": digest sent was rejected (the Listener's authkey differs)");
        const auto challenge = fresh_challenge();
        channel.send(Type::challenge, challenge);
        const auto reply = channel.receive({Type::digest});
        const bool right = answer_is_right(*key, "listener", challenge, reply.payload);
        channel.send(Type::verdict, verdict(right));
        if (!right) throw AuthenticationError(what + ": the Listener's answer to the challenge is wrong (its authkey differs)");
    } else {
        if (payload.size() != hello_size) channel.protocol_error("a greeting of the wrong size");
        if (key) {
            // Mutual, as in Python: a client with a key talks only to a Listener that proves it has it.
            channel.try_send(Type::want_auth);
            throw AuthenticationError(what + ": the Listener has no authkey, but this Client was given one");
        }
        channel.send(Type::ready);
    }

    auto message = channel.receive({Type::connection});
    if (transport.over_socket) {
        if (!message.payload.empty() || !message.descriptors.empty())
            channel.protocol_error("a shared-memory connection offered over TCP");
        auto connection = over_socket(socket, transport, options.max_message);
        channel.send(Type::opened);
        return connection;
    }
    std::vector<int> descriptors;
    for (const auto& fd : message.descriptors) descriptors.push_back(fd.get());
    try {
        codec::Reader reader(message.payload, descriptors);
        auto connection = codec::load<Connection>(reader);  // opens the segment and holds the end
        if (!reader.remaining().empty()) channel.protocol_error("bytes left over after the connection");
        channel.send(Type::opened);
        return connection;  // the received descriptors close now; the Connection keeps duplicates
    } catch (const std::exception& error) {
        const std::string reason = std::string(error.what()).substr(0, 1000);
        channel.try_send(Type::failed, bytes_of(reason));
        throw;
    }
}

}  // namespace ipc::detail
