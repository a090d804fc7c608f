// codec/codec.cpp — the names behind type tags, for errors that say which type a message held, and the
// codec's errors (out of line: they build strings).
#include "ipc/codec.hpp"

#include <cstdio>
#include <mutex>
#include <unordered_map>

namespace ipc::codec {

namespace {
struct TypeNames {
    std::mutex mutex;
    std::unordered_map<std::uint64_t, std::string> names;
};
TypeNames& type_names() {
    static TypeNames names;
    return names;
}
}  // namespace

void remember_type_name(std::uint64_t tag, std::string_view name) {
    auto& registry = type_names();
    std::lock_guard lock(registry.mutex);
    registry.names.emplace(tag, std::string(name));
}

std::string type_name_of(std::uint64_t tag) {
    auto& registry = type_names();
    std::lock_guard lock(registry.mutex);
    auto found = registry.names.find(tag);
    return found == registry.names.end() ? std::string() : found->second;
}

void throw_type_mismatch(std::string_view expected, std::uint64_t got) {
    std::string sent = type_name_of(got);
    if (sent.empty()) {
        char hex[32];
        std::snprintf(hex, sizeof hex, "tag %016llx", static_cast<unsigned long long>(got));
        sent = std::string("an unknown type (") + hex + ")";
    }
    throw CodecError("decode: expected a message of type " + std::string(expected) + " but it holds " + sent);
}

void throw_invalid_bool(std::string_view type, unsigned byte) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", byte & 0xffu);
    throw CodecError("decode " + std::string(type) + ": a bool's byte is " + hex +
                     ", neither 0 nor 1 (corrupt message, or sender and receiver disagree on the type)");
}

void throw_count_too_large(std::string_view decoded, std::string_view container, std::uint64_t count,
                           std::uint64_t element_bytes, std::uint64_t remaining) {
    std::string what = "decode " + std::string(decoded.empty() ? "a value" : decoded) + ": ";
    if (container.empty())
        what += "a count of " + std::to_string(count) + " elements";
    else
        what += "a " + std::string(container) + " of " + std::to_string(count) + " elements (at least " +
                std::to_string(element_bytes) + (element_bytes == 1 ? " byte" : " bytes") + " each)";
    throw CodecError(what + " where only " + std::to_string(remaining) + " bytes are left (corrupt or truncated message)");
}

void throw_trailing_bytes(std::string_view type, std::size_t count) {
    throw CodecError("decode " + std::string(type) + ": " + std::to_string(count) +
                     " bytes left over after the value (sender and receiver disagree on the type's layout)");
}

}  // namespace ipc::codec
