// managers/client.cpp — the proxy's side of a BaseManager call: a pool of connections per server
// address (one per thread at a time, reopened after fork), the key for each address, and the
// reply turned into a value, a new proxy or the method's own exception.
#include <unistd.h>

#include <mutex>
#include <unordered_map>
#include <utility>

#include "ipc/detail/pool_call.hpp"
#include "ipc/listener.hpp"
#include "ipc/managers.hpp"
#include "managers/client.hpp"
#include "managers/protocol.hpp"

namespace ipc::detail {

namespace {

struct ClientPool {
    std::mutex mutex;
    pid_t pid = 0;  // the process the idle connections belong to: a forked child opens its own
    std::unordered_map<std::string, std::vector<Connection>> idle;
    std::unordered_map<std::string, std::string> keys;
};

ClientPool& client_pool() {
    static ClientPool pool;
    return pool;
}

/// Idle connections are kept per address and key: a connection proved one key, not another.
std::string pool_key(const std::string& address, const std::string& authkey) { return address + '\n' + authkey; }

std::optional<Connection> take_idle(const std::string& address, const std::string& authkey) {
    auto& pool = client_pool();
    std::lock_guard lock(pool.mutex);
    if (pool.pid != ::getpid()) {
        pool.idle.clear();  // the parent's connections: ours to drop, never to use
        pool.pid = ::getpid();
    }
    auto& idle = pool.idle[pool_key(address, authkey)];
    if (idle.empty()) return std::nullopt;
    auto connection = std::move(idle.back());
    idle.pop_back();
    return connection;
}

void give_back(const std::string& address, const std::string& authkey, Connection connection) {
    auto& pool = client_pool();
    std::lock_guard lock(pool.mutex);
    if (pool.pid == ::getpid()) pool.idle[pool_key(address, authkey)].push_back(std::move(connection));
}

}  // namespace

void remember_manager_key(const std::string& address, const std::string& authkey) {
    auto& pool = client_pool();
    std::lock_guard lock(pool.mutex);
    pool.keys[address] = authkey;
}

void forget_manager(const std::string& address) {
    auto& pool = client_pool();
    std::lock_guard lock(pool.mutex);
    std::erase_if(pool.idle, [&](const auto& entry) { return entry.first.starts_with(address + '\n'); });
}

std::string process_authkey() {
    const auto key = current_process().authkey();
    return {reinterpret_cast<const char*>(key.data()), key.size()};
}

std::string manager_key(const std::string& address) {
    {
        auto& pool = client_pool();
        std::lock_guard lock(pool.mutex);
        if (const auto found = pool.keys.find(address); found != pool.keys.end()) return found->second;
    }
    return process_authkey();
}

std::vector<std::byte> round_trip(const std::string& address, const std::string& authkey, const Request& request) {
    auto connection = take_idle(address, authkey);
    if (!connection) {
        try {
            connection = Client(address, ClientOptions{.authkey = authkey});
        } catch (const AuthenticationError&) {
            throw;
        } catch (const Error& error) {
            if (request.kind == RequestKind::ping) throw;  // connect(): says why as it is
            throw ManagerError("the manager at '" + address + "' is gone (" + error.what() + ")");
        }
    }
    try {
        connection->send_bytes(request.bytes());
        auto reply = connection->recv_bytes();
        give_back(address, authkey, std::move(*connection));
        return reply;
    } catch (const EOFError&) {
        throw ManagerError("the manager at '" + address + "' is gone (it closed the connection)");
    } catch (const BrokenPipeError&) {
        throw ManagerError("the manager at '" + address + "' is gone (it closed the connection)");
    }
}

CallReply read_reply(const std::string& address, std::span<const std::byte> bytes) {
    codec::Reader reader(bytes);
    ReplyKind kind{};
    reader.read(&kind, sizeof kind);
    CallReply reply;
    switch (kind) {
        case ReplyKind::value: {
            const auto rest = reader.remaining();
            reply.encoded.assign(rest.begin(), rest.end());
            return reply;
        }
        case ReplyKind::object: {
            ObjectRef ref;
            ref.address = address;
            reader.read(&ref.id, sizeof ref.id);
            ref.type_id = reader.read_string();
            reader.read(&ref.type_tag, sizeof ref.type_tag);
            reply.object = std::move(ref);
            return reply;
        }
        case ReplyKind::error: {
            RemoteFailure failure;
            failure.type = reader.read_string();
            failure.message = reader.read_string();
            std::rethrow_exception(remote_exception(failure));
        }
    }
    throw CodecError("the manager at '" + address + "' sent a reply of unknown kind " + std::to_string(static_cast<unsigned>(kind)));
}

ObjectRef manager_create(const std::string& address, std::string_view type_id, std::span<const std::byte> arguments) {
    Request request{RequestKind::create, 0, 0, std::string(type_id), arguments};
    auto reply = read_reply(address, round_trip(address, manager_key(address), request));
    if (!reply.object) throw CodecError("the manager at '" + address + "' answered create() without an object");
    return std::move(*reply.object);
}

CallReply manager_call(const ObjectRef& ref, std::uint64_t key, std::string_view name, std::span<const std::byte> arguments) {
    if (ref.address.empty()) throw ValueError("a proxy call on an empty Proxy (default-constructed or moved from)");
    Request request{RequestKind::call, ref.id, key, std::string(name), arguments};
    return read_reply(ref.address, round_trip(ref.address, manager_key(ref.address), request));
}

void manager_request(const std::string& address, const std::string& authkey, RequestKind kind) {
    (void)read_reply(address, round_trip(address, authkey, Request{kind, 0, 0, {}, {}}));
}

void check_served_type(const ObjectRef& ref, std::uint64_t expected_tag, std::string_view expected_name) {
    if (ref.type_tag == expected_tag) return;
    throw CodecError(ref.describe() + " is a " + codec::type_name_of(ref.type_tag) + ", not a " + std::string(expected_name));
}

void ObjectRef::save(codec::Writer& writer) const {
    writer.write_string(address);
    writer.write(&id, sizeof id);
    writer.write_string(type_id);
    writer.write(&type_tag, sizeof type_tag);
}

ObjectRef ObjectRef::load(codec::Reader& reader, std::uint64_t expected_tag, std::string_view expected_name) {
    ObjectRef ref;
    ref.address = reader.read_string();
    reader.read(&ref.id, sizeof ref.id);
    ref.type_id = reader.read_string();
    reader.read(&ref.type_tag, sizeof ref.type_tag);
    check_served_type(ref, expected_tag, expected_name);
    return ref;
}

std::string ObjectRef::describe() const {
    return "'" + type_id + "' object " + std::to_string(id) + " of the manager at '" + address + "'";
}

}  // namespace ipc::detail
