// shm/holders.hpp — who holds one end of a channel: slots in shared memory naming each holding
// process, and this process's hold on an end, taken with its first handle (also after fork) and
// freed with its last, so a reader can tell "no writer is left" from "no message yet".
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "ipc/detail/segment.hpp"
#include "shm/liveness.hpp"

namespace ipc::detail {

/// The processes that hold one end of a channel, also when a holder died without closing. Each
/// slot holds pack_holder(pid, birth), or 0.
struct alignas(64) Holders {
    static constexpr std::size_t slot_count = 128;
    std::atomic<std::uint64_t> slot[slot_count];

    /// Claims a slot for process `pid` born at `birth`; false when all are taken by live processes.
    bool add(std::uint32_t pid, Birth birth) noexcept;
    void remove(std::uint32_t pid) noexcept;
    /// True while some live process other than `except` holds the end (0: count everyone).
    [[nodiscard]] bool any_alive(std::uint32_t except = 0) const noexcept;
    /// A slot that names a process, alive or not (no look at /proc, so cheap); null when none does.
    [[nodiscard]] const std::atomic<std::uint64_t>* first_listed() const noexcept;
};

class EndpointHold {
public:
    /// Registers this process in `holders`; ValueError when too many processes hold the end.
    /// `on_release` runs when this process lets go (to wake a peer that polls for EOF).
    EndpointHold(std::shared_ptr<Segment> segment, Holders& holders, std::function<void()> on_release = {});
    ~EndpointHold();
    EndpointHold(const EndpointHold&) = delete;
    EndpointHold& operator=(const EndpointHold&) = delete;

    /// Frees the slot now (close()); the destructor then does nothing.
    void release() noexcept;
    /// In the parent, right after fork(), for an end passed to the child: the parent registers the
    /// child, so that no peer can see the end unheld before the child runs.
    void add_forked_child(std::uint32_t child) noexcept;
    /// In the forked child, for an end passed to it: the slot the parent took is ours to free.
    void become_forked_child() noexcept;
    /// In the forked child, for every end first: a copy in memory is not a hold.
    void forget() noexcept;

private:
    std::shared_ptr<Segment> segment_;
    Holders& holders_;
    std::function<void()> on_release_;
    std::uint32_t pid_ = 0;
};

/// A forked child about to _exit(): lets go of the ends it holds, so peers see EOF at once and no
/// stale pid stays in a slot.
void release_endpoints_at_exit() noexcept;

/// In a forked child: the ends copied with the parent's memory are not held by the child (unlike
/// Python, where every inherited descriptor keeps a pipe open); only those passed as arguments are.
/// Called with endpoint_registry_mutex() held across the fork.
void forget_endpoints_after_fork() noexcept;
std::mutex& endpoint_registry_mutex() noexcept;

}  // namespace ipc::detail
