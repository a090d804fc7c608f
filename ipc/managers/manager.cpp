// managers/manager.cpp — the Manager (managers.hpp): starts the manager process that owns the heap,
// waits until it runs, and shuts it down; and that process's own loop, which also holds a
// SharedMemoryManager's blocks.
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "ipc/connection.hpp"
#include "ipc/detail/thread_id.hpp"
#include "ipc/managers.hpp"
#include "managers/heap.hpp"
#include "managers/manager_process.hpp"
#include "shm/liveness.hpp"

namespace ipc {

namespace detail {

enum class ControlMessage : std::uint8_t { ready = 1, shut_down, adopt_segment, adopted, failed };
using ControlPacket = std::pair<ControlMessage, std::string>;

/// The parent's end of the manager process's control connection: one request at a time.
struct ManagerControl {
    explicit ManagerControl(Connection end) : connection(std::move(end)) {}
    Connection connection;
    std::mutex mutex;
};

}  // namespace detail

namespace {

using detail::ControlMessage;
using detail::ControlPacket;

/// A copy of segment `name` made by this process, which then holds it (an anonymous segment goes
/// when its creator drops it or dies).
std::shared_ptr<detail::Segment> copy_segment(const std::string& name) {
    const auto original = detail::Segment::open_any(name);
    const auto bytes = original->payload();
    return detail::Segment::create("", original->kind(), original->element_type(), bytes.size(),
                                   [&](std::span<std::byte> payload) { std::memcpy(payload.data(), bytes.data(), bytes.size()); });
}

/// The manager process: records itself in the heap, says it is ready, and serves until told to
/// shut down or until its parent is gone (its control connection then reads end of file). The
/// segments it adopted (a SharedMemoryManager's blocks) go when it returns, or when it dies.
void manager_main(std::string heap_name, Connection control) {
    const auto heap = detail::ManagerHeap::open(heap_name);
    heap->set_running(detail::this_process_id(), detail::this_process_birth());
    std::vector<std::shared_ptr<detail::Segment>> adopted;
    control.send(ControlPacket{ControlMessage::ready, {}});
    try {
        for (;;) {
            const auto [message, text] = control.recv<ControlPacket>();
            if (message == ControlMessage::shut_down) break;
            if (message != ControlMessage::adopt_segment) continue;
            try {
                adopted.push_back(copy_segment(text));
                control.send(ControlPacket{ControlMessage::adopted, adopted.back()->name()});
            } catch (const Error& error) {
                control.send(ControlPacket{ControlMessage::failed, error.what()});
            }
        }
    } catch (const EOFError&) {
    }
    heap->set_shut_down();
}

[[noreturn]] void throw_manager_gone(std::optional<pid_t> pid) {
    throw ManagerError("SharedMemoryManager: the manager process (pid " + std::to_string(pid.value_or(0)) + ") is gone");
}

/// Python's names for manager processes: SyncManager-1, SyncManager-2, …
std::string next_manager_name() {
    static std::atomic<int> started{0};
    return "SyncManager-" + std::to_string(++started);
}

}  // namespace

Manager::Manager(ManagerOptions options) {
    heap_ = detail::ManagerHeap::create(options.heap_size, options.max_objects);
    auto [ours, theirs] = Pipe(true);
    Process process(ProcessOptions{next_manager_name(), true, options.start_method}, &manager_main, heap_->name(), theirs);
    process.start();
    theirs.close();  // the manager holds it now: its end reads end of file when the manager dies
    process_ = std::move(process);
    control_ = std::make_unique<detail::ManagerControl>(std::move(ours));
    try {
        if (control_->connection.recv<ControlPacket>().first != ControlMessage::ready)
            throw ProcessError("Manager: the manager process sent no ready message");
    } catch (const EOFError&) {
        process_->join();
        throw ProcessError("Manager: the manager process " + process_->name() + " ended before it was ready (exit code " +
                           std::to_string(process_->exitcode().value_or(0)) + ")");
    }
}

Manager::~Manager() {
    try {
        shutdown();
    } catch (...) {
        // A destructor must not throw; shutdown() has killed the process whatever went wrong.
    }
}

Manager::Manager(Manager&&) noexcept = default;
Manager& Manager::operator=(Manager&& other) noexcept {
    if (this != &other) {
        try {
            shutdown();
        } catch (...) {
        }
        heap_ = std::move(other.heap_);
        process_ = std::move(other.process_);
        control_ = std::move(other.control_);
        kept_ = std::move(other.kept_);
    }
    return *this;
}

void Manager::shutdown() {
    if (!heap_) return;
    heap_->set_shut_down();
    if (control_) {
        try {
            std::lock_guard guard(control_->mutex);
            control_->connection.send(ControlPacket{ControlMessage::shut_down, {}});
        } catch (const Error&) {
            // The manager process is gone already.
        }
        control_.reset();
    }
    detail::end_manager_process(process_);
    kept_.clear();
    try {
        heap_->segment()->unlink();
    } catch (const FileNotFoundError&) {
        // Removed already (by the resource tracker, say).
    }
    heap_.reset();
}

void detail::end_manager_process(std::optional<Process>& process) {
    if (process && !process->join(std::chrono::seconds(1))) {
        process->terminate();
        if (!process->join(std::chrono::seconds(1))) {
            process->kill();
            process->join();
        }
    }
    process.reset();
}

std::optional<pid_t> Manager::pid() const { return process_ ? process_->pid() : std::nullopt; }

const std::shared_ptr<detail::ManagerHeap>& Manager::heap() const {
    if (!heap_) throw ManagerError("Manager: it has shut down (or was moved from)");
    return heap_;
}

std::string Manager::adopt_segment(const std::string& name) {
    (void)heap();
    std::lock_guard guard(control_->mutex);
    try {
        control_->connection.send(ControlPacket{ControlMessage::adopt_segment, name});
        const auto [message, text] = control_->connection.recv<ControlPacket>();
        if (message == ControlMessage::adopted) return text;
        throw ManagerError("SharedMemoryManager: the manager process could not take over '" + name + "': " + text);
    } catch (const EOFError&) {
        throw_manager_gone(pid());
    } catch (const BrokenPipeError&) {
        throw_manager_gone(pid());
    }
}

}  // namespace ipc
