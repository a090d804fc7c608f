// managers/client.hpp — what a BaseManager itself asks of the client side (client.cpp): the key for
// an address, requests without an object, and dropping the connections to a server that is gone.
#pragma once

#include <span>
#include <string>

#include "ipc/detail/manager_calls.hpp"
#include "managers/protocol.hpp"

namespace ipc::detail {

/// This process's authkey (Python's current_process().authkey), as the Listener and Client take it.
std::string process_authkey();
/// Proxies of the server at `address` prove `authkey` from now on in this process (and in children
/// forked later); addresses never given one use this process's authkey.
void remember_manager_key(const std::string& address, const std::string& authkey);
/// Closes this process's idle connections to `address`.
void forget_manager(const std::string& address);
/// A reply's value or object, from the server at `address`; an error reply is thrown as the
/// exception it describes, bytes that are no reply as a CodecError.
CallReply read_reply(const std::string& address, std::span<const std::byte> bytes);
/// Sends a request with no object (ping, shutdown), proving `authkey`, and checks the reply.
void manager_request(const std::string& address, const std::string& authkey, RequestKind kind);

}  // namespace ipc::detail
