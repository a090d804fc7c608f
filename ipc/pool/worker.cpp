// pool/worker.cpp — a Pool worker: runs its initializer, then each task from its pipe, posting the results to
// the pool's inbox, until told to stop, its task budget is spent, or the parent is gone.
#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "ipc/detail/pool_call.hpp"
#include "ipc/detail/pool_core.hpp"
#include "ipc/queues.hpp"
#include "pool/protocol.hpp"

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

int pool_worker_main(std::uint32_t index, Connection tasks, InboxHandle inbox_handle, RawArray<std::uint64_t> slots,
                     std::vector<std::byte> initializer, std::uint64_t maxtasks) {
    QueueCore& inbox = *inbox_handle.core;
    std::atomic_ref<std::uint64_t> slot(slots[index]);
    std::vector<std::byte> out;
    auto post = [&] { inbox.put(out, true, Deadline::never(), false); };
    auto start = [&](InboxKind kind, std::uint64_t task) {
        out.clear();
        codec::Writer writer(out);
        codec::save(writer, InboxHeader{kind, index, task, 0});
        return writer;
    };

    if (!initializer.empty()) {
        std::optional<RemoteFailure> failure;
        try {
            codec::Reader reader(initializer);
            std::vector<std::byte> ignored;
            codec::Writer writer(ignored);
            failure = run_call(reader, writer);
        } catch (...) {
            failure = describe_current_exception(0);
        }
        if (failure) {
            auto writer = start(InboxKind::init_failed, 0);
            codec::save(writer, *failure);
            post();
            return 1;
        }
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
        codec::Reader reader(std::span<const std::byte>(message.data(), size));
        const auto task = codec::load<std::uint64_t>(reader);
        if (task == stop_task) return 0;
        slot.store(slot_running(task), std::memory_order_release);
        try {
            auto writer = start(InboxKind::result, task);
            run_call(reader, writer);
        } catch (...) {
            const auto failure = describe_current_exception(0);
            auto writer = start(InboxKind::task_failed, task);
            codec::save(writer, failure);
        }
        post();
        // Only now: had the worker died before the result was posted, the task must count as killed.
        slot.store(slot_finished(task), std::memory_order_release);
    }
    return 0;
}

}  // namespace ipc::detail
