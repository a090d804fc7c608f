// sync/event.cpp — Event: a flag in shared memory that waiters sleep on until set() wakes them all.
#include "ipc/synchronize.hpp"
#include "sys/futex.hpp"
#include "sys/spin.hpp"

namespace ipc {

namespace detail {
struct alignas(64) EventState {
    std::atomic<std::uint32_t> flag{0};
    std::atomic<std::uint32_t> sleepers{0};
};

}  // namespace detail

using detail::Acquired;
using detail::Deadline;
using detail::Kind;
using detail::SharedObject;

// --- Event -------------------------------------------------------------------------------------

Event::Event() : object_(SharedObject::create<detail::EventState>("", Kind::event)) {}
Event Event::create(const std::string& name) { return Event(SharedObject::create<detail::EventState>(name, Kind::event)); }
Event Event::open(const std::string& name) { return Event(SharedObject::open(name, Kind::event)); }

void Event::set() {
    auto& st = state();
    st.flag.store(1, std::memory_order_seq_cst);
    if (st.sleepers.load(std::memory_order_seq_cst) > 0) detail::futex_wake(st.flag);
}

void Event::clear() { state().flag.store(0, std::memory_order_seq_cst); }
bool Event::is_set() const noexcept { return state().flag.load(std::memory_order_acquire) != 0; }
bool Event::wait() { return wait_until(Deadline::never()); }

bool Event::wait_until(const Deadline& deadline) {
    auto& st = state();
    auto set = [&st] { return st.flag.load(std::memory_order_acquire) != 0; };
    if (detail::spin_until(&st.flag, set)) return true;
    st.sleepers.fetch_add(1, std::memory_order_seq_cst);
    while (!set())
        if (!detail::futex_wait(st.flag, 0, deadline)) break;
    st.sleepers.fetch_sub(1, std::memory_order_relaxed);
    return set();
}

void Event::unlink() { object_.segment()->unlink(); }
Event Event::ipc_load(codec::Reader& reader) {
    return Event(SharedObject::load(reader, {Kind::event}, sizeof(detail::EventState)));
}

}  // namespace ipc
