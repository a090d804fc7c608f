// pool/worker.cpp — a Pool worker: runs its initializer, then each task from its pipe, posting the results to
// the pool's inbox, until told to stop, its task budget is spent, or the parent is gone. The running
// of one initializer or task is shared with the workers on MPI ranks (ipc/mpi).
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "ipc/detail/pool_call.hpp"
#include "ipc/detail/pool_core.hpp"
#include "ipc/queues.hpp"
#include "pool/protocol.hpp"
#include "pool/worker_links.hpp"

namespace ipc::detail {

namespace {

std::string code_key(const CodeRef& code) {
    std::string key = code.module;
    key.append(reinterpret_cast<const char*>(&code.offset), sizeof code.offset);
    key.append(reinterpret_cast<const char*>(code.fingerprint.data()), code.fingerprint.size());
    return key;
}

/// Runs the call encoded in `reader` and appends its outcome to `writer`.
std::optional<RemoteFailure> run_call(codec::Reader& reader, codec::Writer& writer) {
    const auto [invoker, function] = resolve_call(codec::load<CallCode>(reader));
    return invoker(function, reader, writer);
}

}  // namespace

std::pair<ChunkInvoker, const void*> resolve_call(const CallCode& code) {
    // Tasks name the same few functions over and over; checking code bytes each time would cost more
    // than a trivial task.
    static std::mutex mutex;
    static std::unordered_map<std::string, const void*> resolved;
    auto lookup = [](const CodeRef& ref) {
        const auto key = code_key(ref);
        std::lock_guard lock(mutex);
        auto found = resolved.find(key);
        if (found == resolved.end()) found = resolved.emplace(key, resolve_code(ref)).first;
        return found->second;
    };
    auto invoker = reinterpret_cast<ChunkInvoker>(const_cast<void*>(lookup(code.invoker)));
    return {invoker, code.function ? lookup(*code.function) : nullptr};
}

std::optional<RemoteFailure> run_initializer(std::span<const std::byte> initializer) {
    if (initializer.empty()) return std::nullopt;
    try {
        codec::Reader reader(initializer);
        std::vector<std::byte> ignored;
        codec::Writer writer(ignored);
        return run_call(reader, writer);
    } catch (...) {
        return describe_current_exception(0);
    }
}

std::uint64_t run_task(std::span<const std::byte> message, std::uint32_t worker, std::vector<std::byte>& out) {
    codec::Reader reader(message);
    const auto task = codec::load<std::uint64_t>(reader);
    if (task == stop_task) return task;
    const auto start = out.size();
    try {
        codec::Writer writer(out);
        codec::save(writer, InboxHeader{InboxKind::result, worker, task, 0});
        run_call(reader, writer);
    } catch (...) {
        const auto failure = describe_current_exception(0);
        out.resize(start);
        codec::Writer writer(out);
        codec::save(writer, InboxHeader{InboxKind::task_failed, worker, task, 0});
        codec::save(writer, failure);
    }
    return task;
}

int pool_worker_main(std::uint32_t index, Connection tasks, InboxHandle inbox_handle, RawArray<std::uint64_t> slots,
                     std::vector<std::byte> initializer, std::uint64_t maxtasks) {
    QueueCore& inbox = *inbox_handle.core;
    std::atomic_ref<std::uint64_t> slot(slots[index]);
    std::vector<std::byte> out;
    auto post = [&] { inbox.put(out, true, Deadline::never(), false); };

    if (const auto failure = run_initializer(initializer)) {
        codec::Writer writer(out);
        codec::save(writer, InboxHeader{InboxKind::init_failed, index, 0, 0});
        codec::save(writer, *failure);
        post();
        return 1;
    }

    // One buffer for every task: a trivial task must not pay an allocation to arrive.
    std::vector<std::byte> message(4096);
    for (std::uint64_t done = 0; maxtasks == 0 || done < maxtasks; ++done) {
        std::size_t size = 0;
        try {
            size = tasks.recv_bytes_into(message);
        } catch (const BufferTooShort& e) {
            message.resize(e.size());  // the task stays in the pipe: take it again
            --done;
            continue;
        } catch (const EOFError&) {
            return 0;  // the parent is gone: nobody wants results any more
        }
        const std::span<const std::byte> received(message.data(), size);
        // The slot says which task runs before it does: the id is the message's first field.
        std::uint64_t task = stop_task;
        if (size >= sizeof task) std::memcpy(&task, received.data(), sizeof task);
        if (task == stop_task) return 0;
        slot.store(slot_running(task), std::memory_order_release);
        out.clear();
        run_task(received, index, out);
        post();
        // Only now: had the worker died before the result was posted, the task must count as killed.
        slot.store(slot_finished(task), std::memory_order_release);
    }
    return 0;
}

}  // namespace ipc::detail
