// managers/server.cpp — a BaseManager's server (Python's managers.Server): accepts clients that know
// the key, serves each connection on its own thread, and keeps the objects it made until it ends.
#include "managers/server.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>

#include "ipc/detail/pool_call.hpp"
#include "ipc/listener.hpp"
#include "managers/client.hpp"
#include "managers/protocol.hpp"

namespace ipc::detail {

namespace {

/// How often an idle server, and each idle connection's thread, looks whether it should stop.
constexpr auto stop_look_interval = std::chrono::milliseconds(200);
/// How long serve_forever() waits for connection threads busy in a method before it returns.
constexpr auto threads_grace = std::chrono::seconds(2);
/// Ring bytes per direction of a local client's connection (larger messages stream through).
constexpr std::size_t client_ring_capacity = std::size_t{256} << 10;

struct Served {
    ServedObject object;
    const TypeEntry* type = nullptr;
    std::shared_ptr<std::mutex> calls;  // one call at a time, unless the type is concurrent
};

/// A fresh abstract address, as Python's Listener() makes for a manager.
std::string fresh_address() {
    static std::atomic<unsigned> made{0};
    std::random_device random;
    return "@ipc-manager-" + std::to_string(::getpid()) + "-" + std::to_string(++made) + "-" + std::to_string(random());
}

}  // namespace

struct ServerState {
    explicit ServerState(ServerSetup setup)
        : types(std::move(setup.types)), control(std::move(setup.control)),
          listener(setup.address.empty() ? fresh_address() : setup.address,
                   ListenerOptions{.backlog = 16, .authkey = setup.authkey, .capacity = client_ring_capacity}) {}

    TypeTable types;
    std::optional<Connection> control;
    Listener listener;
    std::atomic<bool> stopping{false};

    std::mutex mutex;  // guards what follows
    std::unordered_map<std::uint64_t, Served> objects;
    std::unordered_map<const void*, std::uint64_t> ids;  // a callable's kept object is served once
    std::uint64_t next_id = 1;
    int serving_threads = 0;
    std::condition_variable thread_ended;

    /// Serves `object` (a new one, or one served already, as a callable's kept object is).
    std::vector<std::byte> serve(ServedObject object, const TypeEntry& type) {
        std::lock_guard lock(mutex);
        const auto known = ids.find(object.get());
        if (known != ids.end()) return object_reply(known->second, objects.at(known->second).type->type_id, type.type_tag);
        const auto id = next_id++;
        ids.emplace(object.get(), id);
        objects.emplace(id, Served{std::move(object), &type, type.concurrent ? nullptr : std::make_shared<std::mutex>()});
        return object_reply(id, type.type_id, type.type_tag);
    }

    std::vector<std::byte> create(const Request& request) {
        const auto* type = types.find(request.name);
        if (type == nullptr) throw KeyError("manager at '" + listener.address() + "': no typeid '" + request.name + "' is registered");
        if (type->factory == nullptr) throw ManagerError("manager: typeid '" + request.name + "' has no factory");
        auto object = type->factory(type->callable, request.arguments);
        if (!object) throw ManagerError("manager: the callable of typeid '" + request.name + "' returned no object");
        return serve(std::move(object), *type);
    }

    std::vector<std::byte> call(const Request& request) {
        Served served;
        {
            std::lock_guard lock(mutex);
            const auto found = objects.find(request.id);
            if (found == objects.end())
                throw KeyError("manager at '" + listener.address() + "': no object with id " + std::to_string(request.id));
            served = found->second;
        }
        const auto& methods = served.type->methods;
        const auto found = std::find_if(methods.begin(), methods.end(), [&](const ExposedMethod& exposed) {
            return request.key != 0 ? exposed.key == request.key : exposed.name == request.name;
        });
        if (found == methods.end())
            throw AttributeError("'" + served.type->type_id + "' object (" + served.type->type_name + ") exposes no method " +
                                 (request.key != 0 ? request.name : "'" + request.name + "'"));
        const auto* method = &*found;
        MethodResult result;
        if (served.calls) {
            std::lock_guard one_at_a_time(*served.calls);
            result = method->invoke(served.object.get(), request.arguments);
        } else {
            result = method->invoke(served.object.get(), request.arguments);
        }
        if (result.object_tag == 0) return value_reply(result.encoded);
        if (!result.object)
            throw ManagerError("manager: method '" + method->name + "' of '" + served.type->type_id +
                               "' returned an empty std::shared_ptr, no object to serve");
        const auto* type = method->result_typeid.empty() ? types.find_by_tag(result.object_tag) : types.find(method->result_typeid);
        if (type == nullptr || type->type_tag != result.object_tag)
            throw ManagerError("manager: method '" + method->name + "' of '" + served.type->type_id + "' returned an object "
                               "of no registered typeid (name one: .method<...>(\"" + method->name + "\", \"typeid\"))");
        return serve(std::move(result.object), *type);
    }

    /// One request's reply; what goes wrong is an error reply, never the end of the server.
    std::vector<std::byte> reply_to(std::span<const std::byte> bytes) {
        try {
            const auto request = Request::parse(bytes);
            switch (request.kind) {
                case RequestKind::create: return create(request);
                case RequestKind::call: return call(request);
                case RequestKind::shutdown: stopping = true; return value_reply({});
                case RequestKind::ping: return value_reply({});
            }
            throw CodecError("manager request: unknown kind");
        } catch (...) {
            const auto failure = describe_current_exception(0);
            return error_reply(failure.type, failure.message);
        }
    }

    void serve_connection(Connection connection) {
        try {
            while (!stopping) {
                if (!connection.poll(stop_look_interval)) continue;
                const auto request = connection.recv_bytes();
                connection.send_bytes(reply_to(request));
            }
        } catch (const Error&) {
            // The client hung up (end of file) or went away mid-reply: its thread ends.
        }
    }

    /// Stops on a shut-down message from the BaseManager that started this process, or when its
    /// end of the control connection closed.
    void look_at_control() {
        try {
            if (control && control->poll()) stopping = true;  // a message, or end of file: time to go
        } catch (const Error&) {
            stopping = true;
        }
    }
};

std::shared_ptr<ServerState> listen_for_clients(ServerSetup setup) { return std::make_shared<ServerState>(std::move(setup)); }

std::vector<std::byte> answer_request(ServerState& state, std::span<const std::byte> request) { return state.reply_to(request); }

ManagerServer server_of(std::shared_ptr<ServerState> state) { return ManagerServer(std::move(state)); }

}  // namespace ipc::detail

namespace ipc {

ManagerServer::ManagerServer(std::shared_ptr<detail::ServerState> state) noexcept : state_(std::move(state)) {}
ManagerServer::ManagerServer(ManagerServer&&) noexcept = default;
ManagerServer& ManagerServer::operator=(ManagerServer&&) noexcept = default;
ManagerServer::~ManagerServer() = default;

const std::string& ManagerServer::address() const {
    if (!state_) throw ValueError("ManagerServer: moved from");
    return state_->listener.address();
}

void ManagerServer::stop() noexcept {
    if (state_) state_->stopping = true;
}

void ManagerServer::serve_forever() {
    if (!state_) throw ValueError("ManagerServer: moved from");
    auto state = state_;
    while (!state->stopping) {
        state->look_at_control();
        if (state->stopping) break;
        try {
            auto connection = state->listener.accept(detail::stop_look_interval);
            std::lock_guard lock(state->mutex);
            ++state->serving_threads;
            std::thread([state, connection = std::move(connection)]() mutable {
                state->serve_connection(std::move(connection));
                std::lock_guard ended(state->mutex);
                --state->serving_threads;
                state->thread_ended.notify_all();
            }).detach();
        } catch (const TimeoutError&) {
        } catch (const Error&) {
            // A client that failed the handshake (a wrong key, garbage, silence): the next one may come.
        }
    }
    state->listener.close();
    detail::forget_manager(state->listener.address());  // this process's own idle connections to it
    std::unique_lock lock(state->mutex);
    state->thread_ended.wait_for(lock, detail::threads_grace, [&] { return state->serving_threads == 0; });
}

}  // namespace ipc
