// net/handshake.hpp — what Listener and Client say on the socket: a greeting, the mutual HMAC
// challenge when there is an authkey, then the hand-over of one end of a fresh Pipe (or, over TCP,
// the word that the socket itself carries the messages from now on). Private to the library.
#pragma once

#include <chrono>
#include <span>
#include <string>

#include "ipc/detail/deadline.hpp"
#include "ipc/listener.hpp"

namespace ipc::detail {

/// What the Connection runs on once the handshake is done.
struct Transport {
    bool over_socket = false;  // TCP: the socket itself (a duplicate of it); else a fresh Pipe
    std::string name;          // over the socket: the Connection's name in its errors
};

/// The Listener's side, on a socket accept() returned; bounded by options.handshake_timeout.
/// `what` names the Listener and the peer in errors. Returns the Listener's end of the new Pipe.
Connection handshake_as_listener(int socket, const std::string& what, const ListenerOptions& options,
                                 const Transport& transport);

/// The Client's side, on a connected socket. The Listener's greeting may take until `accepted`
/// (it comes when the Listener accepts); the rest is bounded by options.handshake_timeout.
Connection handshake_as_client(int socket, const std::string& what, const ClientOptions& options,
                               const Deadline& accepted, const Transport& transport);

/// What is left until `deadline` for poll_for(): negative (wait forever) for Deadline::never().
std::chrono::nanoseconds time_left(const Deadline& deadline);

/// Fills `out` from the kernel's random source (for challenges and generated addresses).
void random_bytes(std::span<std::byte> out);

}  // namespace ipc::detail
