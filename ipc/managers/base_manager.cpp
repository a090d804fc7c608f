// managers/base_manager.cpp — BaseManager (managers.hpp): the registered types, the manager process
// that start() runs (a server told to stop by its control connection), get_server(), connect() and
// shutdown(); and how the registered types cross to a spawned manager process.
#include <atomic>
#include <chrono>
#include <utility>

#include "ipc/managers.hpp"
#include "managers/client.hpp"
#include "managers/manager_process.hpp"
#include "managers/server.hpp"

namespace ipc {

namespace detail {

/// The BaseManager's end of its manager process's control connection.
struct BaseManagerControl {
    explicit BaseManagerControl(Connection end) : connection(std::move(end)) {}
    Connection connection;
};

const TypeEntry* TypeTable::find(std::string_view type_id) const noexcept {
    for (const auto& type : types)
        if (type.type_id == type_id) return &type;
    return nullptr;
}

const TypeEntry* TypeTable::find_by_tag(std::uint64_t tag) const noexcept {
    const TypeEntry* found = nullptr;
    for (const auto& type : types) {
        if (type.type_tag != tag) continue;
        if (found != nullptr) return nullptr;
        found = &type;
    }
    return found;
}

namespace {

void save_code(codec::Writer& writer, const void* code) {
    const bool present = code != nullptr;
    writer.write(&present, sizeof present);
    if (present) codec::save(writer, locate_code(code));
}

const void* load_code(codec::Reader& reader) {
    bool present = false;
    reader.read(&present, sizeof present);
    return present ? resolve_code(codec::load<CodeRef>(reader)) : nullptr;
}

template <class Count>
Count checked_count(codec::Reader& reader, std::size_t least_bytes_each) {
    std::uint64_t count = 0;
    reader.read(&count, sizeof count);
    if (count > reader.remaining().size() / least_bytes_each) throw CodecError("decode a manager's types: count too large");
    return static_cast<Count>(count);
}

}  // namespace

void TypeTable::ipc_save(codec::Writer& writer) const {
    const std::uint64_t count = types.size();
    writer.write(&count, sizeof count);
    for (const auto& type : types) {
        writer.write_string(type.type_id);
        writer.write(&type.type_tag, sizeof type.type_tag);
        writer.write_string(type.type_name);
        save_code(writer, reinterpret_cast<const void*>(type.factory));
        save_code(writer, type.callable);
        writer.write(&type.concurrent, sizeof type.concurrent);
        const std::uint64_t methods = type.methods.size();
        writer.write(&methods, sizeof methods);
        for (const auto& method : type.methods) {
            writer.write_string(method.name);
            writer.write(&method.key, sizeof method.key);
            save_code(writer, reinterpret_cast<const void*>(method.invoke));
            writer.write_string(method.result_typeid);
        }
    }
}

TypeTable TypeTable::ipc_load(codec::Reader& reader) {
    TypeTable table;
    const auto count = checked_count<std::size_t>(reader, 8);
    for (std::size_t i = 0; i < count; ++i) {
        TypeEntry type;
        type.type_id = reader.read_string();
        reader.read(&type.type_tag, sizeof type.type_tag);
        type.type_name = reader.read_string();
        type.factory = reinterpret_cast<ObjectFactory>(const_cast<void*>(load_code(reader)));
        type.callable = load_code(reader);
        reader.read(&type.concurrent, sizeof type.concurrent);
        const auto methods = checked_count<std::size_t>(reader, 8);
        for (std::size_t m = 0; m < methods; ++m) {
            ExposedMethod method;
            method.name = reader.read_string();
            reader.read(&method.key, sizeof method.key);
            method.invoke = reinterpret_cast<MethodInvoker>(const_cast<void*>(load_code(reader)));
            method.result_typeid = reader.read_string();
            if (method.invoke == nullptr) throw CodecError("decode a manager's types: method '" + method.name + "' has no code");
            type.methods.push_back(std::move(method));
        }
        table.types.push_back(std::move(type));
    }
    return table;
}

}  // namespace detail

namespace {

/// The manager process of start(): says where it listens, then serves until the BaseManager says
/// stop or is gone.
void base_manager_main(detail::TypeTable types, std::string address, std::string authkey, Connection control) {
    auto state = detail::listen_for_clients({std::move(types), std::move(address), std::move(authkey), control});
    ManagerServer server = detail::server_of(state);
    control.send(server.address());
    server.serve_forever();
}

std::string next_manager_name() {
    static std::atomic<int> started{0};
    return "BaseManager-" + std::to_string(++started);
}

}  // namespace

BaseManager::BaseManager(BaseManagerOptions options)
    : options_(std::move(options)), address_(options_.address), authkey_(options_.authkey ? *options_.authkey : detail::process_authkey()),
      types_(std::make_unique<detail::TypeTable>()) {}

BaseManager::~BaseManager() {
    try {
        if (state_ == State::started) shutdown();
    } catch (...) {
        // A destructor must not throw; shutdown() has killed the process whatever went wrong.
    }
}

BaseManager::BaseManager(BaseManager&& other) noexcept
    : options_(std::move(other.options_)), address_(std::move(other.address_)), authkey_(std::move(other.authkey_)),
      types_(std::move(other.types_)), process_(std::exchange(other.process_, std::nullopt)),
      control_(std::move(other.control_)), state_(std::exchange(other.state_, State::shut_down)) {}
BaseManager& BaseManager::operator=(BaseManager&& other) noexcept {
    if (this != &other) {
        try {
            if (state_ == State::started) shutdown();
        } catch (...) {
        }
        options_ = std::move(other.options_);
        address_ = std::move(other.address_);
        authkey_ = std::move(other.authkey_);
        types_ = std::move(other.types_);
        process_ = std::exchange(other.process_, std::nullopt);
        control_ = std::move(other.control_);
        state_ = std::exchange(other.state_, State::shut_down);
    }
    return *this;
}

detail::TypeEntry& BaseManager::add_type(std::string type_id, std::uint64_t tag, std::string type_name,
                                         detail::ObjectFactory factory, const void* callable) {
    if (state_ != State::fresh)
        throw ValueError("register_type('" + type_id + "'): register types before start(), get_server() or connect()");
    if (type_id.empty()) throw ValueError("register_type: the typeid is empty");
    if (types_->find(type_id) != nullptr) throw ValueError("register_type: typeid '" + type_id + "' is registered already");
    return types_->types.emplace_back(
        detail::TypeEntry{std::move(type_id), tag, std::move(type_name), factory, callable, false, {}});
}

void BaseManager::start() {
    if (state_ != State::fresh) throw ProcessError("BaseManager.start: the manager was started, served or connected already");
    auto [ours, theirs] = Pipe(true);
    Process process(ProcessOptions{next_manager_name(), true, options_.start_method}, &base_manager_main, *types_,
                    address_, authkey_, theirs);
    process.start();
    theirs.close();  // the manager holds it now: its end reads end of file when the manager dies
    process_ = std::move(process);
    control_ = std::make_unique<detail::BaseManagerControl>(std::move(ours));
    try {
        address_ = control_->connection.recv<std::string>();
    } catch (const EOFError&) {
        process_->join();
        throw ProcessError("BaseManager.start: the manager process " + process_->name() +
                           " ended before it listened (exit code " + std::to_string(process_->exitcode().value_or(0)) + ")");
    }
    detail::remember_manager_key(address_, authkey_);
    state_ = State::started;
}

ManagerServer BaseManager::get_server() {
    if (state_ != State::fresh) throw ProcessError("BaseManager.get_server: the manager was started, served or connected already");
    auto state = detail::listen_for_clients({*types_, address_, authkey_});
    ManagerServer server = detail::server_of(state);
    address_ = server.address();
    detail::remember_manager_key(address_, authkey_);
    state_ = State::serving;
    return server;
}

void BaseManager::connect() {
    if (state_ != State::fresh) throw ProcessError("BaseManager.connect: the manager was started, served or connected already");
    if (address_.empty()) throw ValueError("BaseManager.connect: no address to connect to");
    detail::manager_request(address_, authkey_, detail::RequestKind::ping);
    detail::remember_manager_key(address_, authkey_);
    state_ = State::connected;
}

const std::string& BaseManager::server_address() const {
    if (state_ == State::fresh) throw ValueError("BaseManager: start(), get_server() or connect() first");
    if (state_ == State::shut_down) throw ManagerError("BaseManager: it has shut down (or was moved from)");
    return address_;
}

void BaseManager::shutdown() {
    const auto was = std::exchange(state_, State::shut_down);
    if (was == State::connected) {
        try {
            detail::manager_request(address_, authkey_, detail::RequestKind::shutdown);
        } catch (const ManagerError&) {
            // Gone already.
        }
    }
    if (was == State::connected || was == State::started) detail::forget_manager(address_);
    if (control_) {
        try {
            control_->connection.send(std::string("shut down"));
        } catch (const Error&) {
            // The manager process is gone already.
        }
        control_.reset();
    }
    detail::end_manager_process(process_);
}

std::optional<pid_t> BaseManager::pid() const { return process_ ? process_->pid() : std::nullopt; }

}  // namespace ipc
