// managers/protocol.hpp — the messages between a BaseManager's proxies and its server: one request,
// one reply, each a flat byte string read with bounds checks (a hostile client gets an error reply).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ipc/detail/codec_stream.hpp"

namespace ipc::detail {

enum class RequestKind : std::uint8_t { create = 1, call = 2, shutdown = 3, ping = 4 };
enum class ReplyKind : std::uint8_t { value = 1, object = 2, error = 3 };

/// kind, object id, member key, name (a typeid for create, a method's for call), then the encoded
/// arguments.
struct Request {
    RequestKind kind = RequestKind::ping;
    std::uint64_t id = 0;
    std::uint64_t key = 0;
    std::string name;
    std::span<const std::byte> arguments;

    [[nodiscard]] std::vector<std::byte> bytes() const;
    /// CodecError for bytes that are no request.
    static Request parse(std::span<const std::byte> bytes);
};

/// A reply: kind, then the encoded value; or the object's id, typeid and C++ type tag; or the
/// exception's type name and message.
std::vector<std::byte> value_reply(std::span<const std::byte> encoded);
std::vector<std::byte> object_reply(std::uint64_t id, const std::string& type_id, std::uint64_t type_tag);
std::vector<std::byte> error_reply(const std::string& type, const std::string& message);

}  // namespace ipc::detail
