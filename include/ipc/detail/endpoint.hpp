// ipc/detail/endpoint.hpp — this process's hold on one end of a channel: a slot with our pid in the
// channel's Holders, taken when the first handle appears here (also after fork) and freed with the last.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "ipc/detail/ring.hpp"
#include "ipc/detail/segment.hpp"

namespace ipc::detail {

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
