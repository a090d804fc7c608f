// managers/protocol.cpp — how BaseManager requests and replies are written and read (protocol.hpp).
#include "managers/protocol.hpp"

#include "ipc/error.hpp"

namespace ipc::detail {

std::vector<std::byte> Request::bytes() const {
    std::vector<std::byte> out;
    codec::Writer writer(out);
    writer.write(&kind, sizeof kind);
    writer.write(&id, sizeof id);
    writer.write(&key, sizeof key);
    writer.write_string(name);
    writer.write(arguments.data(), arguments.size());
    return out;
}

Request Request::parse(std::span<const std::byte> bytes) {
    codec::Reader reader(bytes);
    Request request;
    reader.read(&request.kind, sizeof request.kind);
    if (request.kind < RequestKind::create || request.kind > RequestKind::ping)
        throw CodecError("manager request: unknown kind " + std::to_string(static_cast<unsigned>(request.kind)));
    reader.read(&request.id, sizeof request.id);
    reader.read(&request.key, sizeof request.key);
    request.name = reader.read_string();
    request.arguments = reader.remaining();
    return request;
}

namespace {
std::vector<std::byte> reply_of(ReplyKind kind) {
    std::vector<std::byte> out;
    codec::Writer(out).write(&kind, sizeof kind);
    return out;
}
}  // namespace

std::vector<std::byte> value_reply(std::span<const std::byte> encoded) {
    auto out = reply_of(ReplyKind::value);
    codec::Writer(out).write(encoded.data(), encoded.size());
    return out;
}

std::vector<std::byte> object_reply(std::uint64_t id, const std::string& type_id, std::uint64_t type_tag) {
    auto out = reply_of(ReplyKind::object);
    codec::Writer writer(out);
    writer.write(&id, sizeof id);
    writer.write_string(type_id);
    writer.write(&type_tag, sizeof type_tag);
    return out;
}

std::vector<std::byte> error_reply(const std::string& type, const std::string& message) {
    auto out = reply_of(ReplyKind::error);
    codec::Writer writer(out);
    writer.write_string(type);
    writer.write_string(message);
    return out;
}

}  // namespace ipc::detail
