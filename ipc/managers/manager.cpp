// managers/manager.cpp — the Manager (managers.hpp): starts the manager process that owns the heap,
// waits until it runs, and shuts it down; and that process's own loop.
#include <chrono>
#include <cstdint>

#include "ipc/connection.hpp"
#include "ipc/detail/thread_id.hpp"
#include "ipc/managers.hpp"
#include "managers/heap.hpp"
#include "shm/liveness.hpp"

namespace ipc {

namespace {

enum class ControlMessage : std::uint8_t { ready = 1, shut_down = 2 };

/// The manager process: records itself in the heap, says it is ready, and runs until told to shut
/// down or until its parent is gone (its control connection then reads end of file).
void manager_main(std::string heap_name, Connection control) {
    const auto heap = detail::ManagerHeap::open(heap_name);
    heap->set_running(detail::this_process_id(), detail::this_process_birth());
    control.send(ControlMessage::ready);
    try {
        while (control.recv<ControlMessage>() != ControlMessage::shut_down) {
        }
    } catch (const EOFError&) {
    }
    heap->set_shut_down();
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
    control_ = std::move(ours);
    try {
        if (control_->recv<ControlMessage>() != ControlMessage::ready)
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

void Manager::shutdown() {
    if (!heap_) return;
    heap_->set_shut_down();
    if (control_) {
        try {
            control_->send(ControlMessage::shut_down);
        } catch (const Error&) {
            // The manager process is gone already.
        }
        control_.reset();
    }
    if (process_ && !process_->join(std::chrono::seconds(1))) {
        process_->terminate();
        if (!process_->join(std::chrono::seconds(1))) {
            process_->kill();
            process_->join();
        }
    }
    process_.reset();
    try {
        heap_->segment()->unlink();
    } catch (const FileNotFoundError&) {
        // Removed already (by the resource tracker, say).
    }
    heap_.reset();
}

std::optional<pid_t> Manager::pid() const { return process_ ? process_->pid() : std::nullopt; }

const std::shared_ptr<detail::ManagerHeap>& Manager::heap() const {
    if (!heap_) throw ManagerError("Manager: it has shut down (or was moved from)");
    return heap_;
}

}  // namespace ipc
