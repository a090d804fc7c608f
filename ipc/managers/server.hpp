// managers/server.hpp — a BaseManager's server as the library makes it: listening at once, serving
// the registered types to every client that knows the key.
#pragma once

#include <optional>
#include <span>
#include <vector>
#include <string>

#include "ipc/connection.hpp"
#include "ipc/managers.hpp"

namespace ipc::detail {

struct ServerSetup {
    TypeTable types;
    std::string address;  // empty: a fresh abstract address
    std::string authkey;
    /// A manager process's link to its BaseManager: a shut-down message or end of file (the
    /// BaseManager's process is gone) stops the server.
    std::optional<Connection> control = {};
};

/// Listens at `setup.address`; the server runs when its serve_forever() is called.
std::shared_ptr<ServerState> listen_for_clients(ServerSetup setup);
/// The server's reply to one request's bytes (any bytes: what is wrong is an error reply).
std::vector<std::byte> answer_request(ServerState& state, std::span<const std::byte> request);
/// The public handle of a listening server.
ManagerServer server_of(std::shared_ptr<ServerState> state);

}  // namespace ipc::detail
