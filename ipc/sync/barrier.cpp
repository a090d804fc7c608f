// sync/barrier.cpp — Barrier: parties meet under an internal robust lock; a timeout, abort, reset
// or a party that died inside breaks it for everyone, as Python's does.
#include <algorithm>

#include "ipc/codec.hpp"
#include "ipc/detail/code_ref.hpp"
#include "ipc/synchronize.hpp"
#include "sync/objects.hpp"
#include "sys/futex.hpp"

namespace ipc {

namespace detail {
struct alignas(64) BarrierState {
    LockWord mutex;
    std::atomic<std::uint32_t> epoch{0};  // bumped on every release, break or reset; waiters sleep on it
    std::uint32_t parties = 0;
    std::uint32_t count = 0;
    std::uint32_t generation = 0;
    bool broken = false;
    std::uint64_t released_bits = 0;  // bit g % 64: generation g ended by a release (not a reset)
    std::int64_t timeout_ns = -1;     // the default timeout of wait(); -1: none
};

}  // namespace detail

using detail::Acquired;
using detail::Deadline;
using detail::Kind;
using detail::SharedObject;

// --- Barrier -----------------------------------------------------------------------------------

Barrier::Barrier(unsigned parties, void (*action)(), std::optional<std::chrono::nanoseconds> timeout) : action_(action) {
    if (parties == 0) throw ValueError("Barrier needs at least one party");
    object_ = SharedObject::create<detail::BarrierState>("", Kind::barrier);
    auto& st = state();
    st.parties = parties;
    st.timeout_ns = timeout ? std::max<std::int64_t>(0, timeout->count()) : -1;
}

unsigned Barrier::wait() {
    const auto timeout = state().timeout_ns;
    return wait_until(timeout < 0 ? Deadline::never() : Deadline::after(std::chrono::nanoseconds(timeout)));
}

unsigned Barrier::wait_until(const Deadline& deadline) {
    auto& st = state();
    const auto what = detail::describe(Kind::barrier, object_);
    auto wake_all = [&st] {
        st.epoch.fetch_add(1, std::memory_order_release);
        detail::futex_wake(st.epoch);
    };
    // A party that died inside the barrier's own critical section may have left it half-updated.
    detail::InternalLock guard(st.mutex, [&st] { st.broken = true; });
    if (st.broken) throw BrokenBarrierError(what + " is broken");
    const std::uint32_t generation = st.generation;
    const unsigned index = st.count++;
    if (st.count == st.parties) {
        if (action_) {
            try {
                action_();
            } catch (...) {
                st.broken = true;
                wake_all();
                throw;
            }
        }
        st.released_bits |= std::uint64_t{1} << (generation % 64);
        st.count = 0;
        ++st.generation;
        st.released_bits &= ~(std::uint64_t{1} << (st.generation % 64));
        wake_all();
        return index;
    }
    for (;;) {
        const std::uint32_t epoch = st.epoch.load(std::memory_order_acquire);
        detail::release_lock(st.mutex);
        const bool woken = detail::futex_wait(st.epoch, epoch, deadline);
        if (detail::acquire_lock(st.mutex, detail::this_thread_id(), true, Deadline::never()) == Acquired::owner_died)
            st.broken = true;
        if (st.generation != generation) {
            if (st.released_bits & (std::uint64_t{1} << (generation % 64))) return index;
            throw BrokenBarrierError(what + " was reset while this party waited");
        }
        if (st.broken) {
            --st.count;
            throw BrokenBarrierError(what + " was broken while this party waited");
        }
        if (!woken && deadline.expired()) {
            st.broken = true;
            --st.count;
            wake_all();
            throw BrokenBarrierError(what + ": timed out waiting for " + std::to_string(st.parties - st.count - 1) +
                                     " more part" + (st.parties - st.count - 1 == 1 ? "y" : "ies"));
        }
    }
}

void Barrier::reset() {
    auto& st = state();
    detail::InternalLock guard(st.mutex, [] {});
    st.released_bits &= ~(std::uint64_t{1} << (st.generation % 64));
    ++st.generation;
    st.released_bits &= ~(std::uint64_t{1} << (st.generation % 64));
    st.count = 0;
    st.broken = false;
    st.epoch.fetch_add(1, std::memory_order_release);
    detail::futex_wake(st.epoch);
}

void Barrier::abort() {
    auto& st = state();
    detail::InternalLock guard(st.mutex, [] {});
    st.broken = true;
    st.epoch.fetch_add(1, std::memory_order_release);
    detail::futex_wake(st.epoch);
}

unsigned Barrier::parties() const noexcept { return state().parties; }
unsigned Barrier::n_waiting() const noexcept { return state().broken ? 0 : state().count; }
bool Barrier::broken() const noexcept { return state().broken; }

void Barrier::ipc_save(codec::Writer& writer) const {
    object_.save(writer);
    codec::save(writer, action_ != nullptr);
    if (action_) codec::save(writer, detail::locate_code(reinterpret_cast<const void*>(action_)));
}

Barrier Barrier::ipc_load(codec::Reader& reader) {
    auto object = SharedObject::load(reader, {Kind::barrier}, sizeof(detail::BarrierState));
    void (*action)() = nullptr;
    if (codec::load<bool>(reader))
        action = reinterpret_cast<void (*)()>(const_cast<void*>(detail::resolve_code(codec::load<detail::CodeRef>(reader))));
    return Barrier(std::move(object), action);
}

}  // namespace ipc
