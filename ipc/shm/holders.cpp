// shm/holders.cpp — the slots of a channel end's holders, and this process's registry of its holds.
#include "shm/holders.hpp"

#include <algorithm>
#include <mutex>
#include <vector>

#include "ipc/detail/thread_id.hpp"
#include "ipc/error.hpp"

namespace ipc::detail {

bool Holders::add(std::uint32_t pid, Birth birth) noexcept {
    const auto holder = pack_holder(pid, birth);
    for (auto& entry : slot) {
        std::uint64_t seen = entry.load(std::memory_order_relaxed);
        // A slot is free when empty or when its holder died without closing.
        if ((seen == 0 || !alive(seen)) && entry.compare_exchange_strong(seen, holder)) return true;
    }
    return false;
}

void Holders::remove(std::uint32_t pid) noexcept {
    for (auto& entry : slot) {
        std::uint64_t seen = entry.load(std::memory_order_relaxed);
        if (seen != 0 && holder_id(seen) == pid && entry.compare_exchange_strong(seen, 0)) return;
    }
}

bool Holders::any_alive(std::uint32_t except) const noexcept {
    for (const auto& entry : slot) {
        const auto holder = entry.load(std::memory_order_acquire);
        if (holder != 0 && holder_id(holder) != except && alive(holder)) return true;
    }
    return false;
}

const std::atomic<std::uint64_t>* Holders::first_listed() const noexcept {
    for (const auto& entry : slot)
        if (entry.load(std::memory_order_acquire) != 0) return &entry;
    return nullptr;
}

namespace {
struct Registry {
    std::mutex mutex;
    std::vector<EndpointHold*> live;
};
// Constant-initialized, so destroyed after everything that exit handlers tear down (a Process
// still listed at exit holds its arguments' ends, and they unregister as they go).
constinit Registry registry_instance{};
Registry& registry() { return registry_instance; }
}  // namespace

EndpointHold::EndpointHold(std::shared_ptr<Segment> segment, Holders& holders, std::function<void()> on_release)
    : segment_(std::move(segment)), holders_(holders), on_release_(std::move(on_release)), pid_(this_process_id()) {
    if (!holders_.add(pid_, this_process_birth()))
        throw ValueError("'" + segment_->name() + "': more than " + std::to_string(Holders::slot_count) +
                         " processes hold this end at once");
    std::lock_guard lock(registry().mutex);
    registry().live.push_back(this);
}

EndpointHold::~EndpointHold() {
    release();
    std::lock_guard lock(registry().mutex);
    std::erase(registry().live, this);
}

void EndpointHold::release() noexcept {
    const bool held = pid_ != 0 && pid_ == this_process_id();
    pid_ = 0;
    if (!held) return;
    holders_.remove(this_process_id());
    if (on_release_) on_release_();
}

void EndpointHold::add_forked_child(std::uint32_t child) noexcept {
    // The child exists once fork() returned, so its birth can be read already.
    holders_.add(child, birth_of(child));  // all slots taken by live processes: the end reads as closed there, no worse
}

void EndpointHold::become_forked_child() noexcept { pid_ = this_process_id(); }

void EndpointHold::forget() noexcept { pid_ = 0; }

std::mutex& endpoint_registry_mutex() noexcept { return registry().mutex; }

void release_endpoints_at_exit() noexcept {
    std::lock_guard lock(registry().mutex);
    for (auto* hold : registry().live) hold->release();
}

void forget_endpoints_after_fork() noexcept {
    for (auto* hold : registry().live) hold->forget();
}

}  // namespace ipc::detail
