// sync/condition.cpp — Condition: each waiter sleeps on its own slot, so notify(n) wakes exactly the
// n longest waiters, and one that timed out never takes a notification meant for another.
#include <algorithm>
#include <limits>
#include <vector>

#include "ipc/synchronize.hpp"
#include "sync/objects.hpp"
#include "sys/futex.hpp"
#include "sys/spin.hpp"

namespace ipc {

namespace detail {
/// One waiter of a Condition: it sleeps on its own word, so notify(n) wakes exactly the chosen ones.
struct ConditionSlot {
    static constexpr std::uint32_t free = 0, claimed = 1, waiting = 2, notified = 3;
    std::atomic<std::uint32_t> state{free};
    std::uint32_t unused = 0;
    std::uint64_t ticket = 0;  // arrival order, so notify wakes the longest waiters first
};

struct alignas(64) ConditionState {
    static constexpr std::size_t slot_count = 1024;
    std::atomic<std::uint64_t> next_ticket{0};
    std::atomic<std::uint32_t> waiters{0};
    std::atomic<std::uint32_t> slots_used{0};  // high-water mark: notify scans no further
    ConditionSlot slots[slot_count];
};

}  // namespace detail

using detail::Acquired;
using detail::Deadline;
using detail::Kind;
using detail::SharedObject;

// --- Condition ---------------------------------------------------------------------------------

namespace {
detail::SharedObject make_condition() { return SharedObject::create<detail::ConditionState>("", Kind::condition); }
}  // namespace

Condition::Condition() : Condition(RLock()) {}
Condition::Condition(Lock lock) : object_(make_condition()), lock_(std::move(lock)) {}
Condition::Condition(RLock lock) : object_(make_condition()), lock_(std::move(lock)) {}

bool Condition::acquire(bool block) {
    return std::visit([block](auto& lock) { return lock.acquire(block); }, lock_);
}
void Condition::release() {
    std::visit([](auto& lock) { lock.release(); }, lock_);
}

void Condition::require_owned(const char* operation) const {
    const bool owned = std::visit(
        [](const auto& lock) {
            if constexpr (std::is_same_v<std::decay_t<decltype(lock)>, RLock>)
                return lock.is_owned();
            else
                return detail::lock_owner(lock.word()) == detail::this_process_id();
        },
        lock_);
    if (!owned) throw Error(std::string("cannot ") + operation + " " + detail::describe(Kind::condition, object_) + ": its lock is not held");
}

bool Condition::wait() { return wait_until(Deadline::never()); }

bool Condition::wait_until(const Deadline& deadline) {
    require_owned("wait on");
    auto& st = state();
    detail::ConditionSlot* slot = nullptr;
    for (std::size_t i = 0; i < detail::ConditionState::slot_count; ++i) {
        std::uint32_t expected = detail::ConditionSlot::free;
        if (st.slots[i].state.compare_exchange_strong(expected, detail::ConditionSlot::claimed)) {
            slot = &st.slots[i];
            std::uint32_t used = st.slots_used.load();
            while (used < i + 1 && !st.slots_used.compare_exchange_weak(used, static_cast<std::uint32_t>(i + 1))) {
            }
            break;
        }
    }
    if (!slot)
        throw Error("wait on " + detail::describe(Kind::condition, object_) + ": more than " +
                    std::to_string(detail::ConditionState::slot_count) + " waiters at once");
    // The lock is held, so tickets follow the order in which waiters arrived.
    slot->ticket = st.next_ticket.fetch_add(1, std::memory_order_relaxed);
    slot->state.store(detail::ConditionSlot::waiting, std::memory_order_release);
    st.waiters.fetch_add(1, std::memory_order_seq_cst);

    // Release the lock completely (an RLock may be held several times) and remember how deep.
    std::uint32_t depth = 0;
    std::visit(
        [&depth](auto& lock) {
            depth = lock.word().depth;
            lock.word().depth = 0;
            detail::release_lock(lock.word());
        },
        lock_);

    bool notified = false;
    auto is_notified = [slot] { return slot->state.load(std::memory_order_acquire) == detail::ConditionSlot::notified; };
    detail::spin_until(is_notified, detail::spin_budget / 4);
    for (;;) {
        if (is_notified()) {
            notified = true;
            break;
        }
        if (!detail::futex_wait(slot->state, detail::ConditionSlot::waiting, deadline)) {
            // Timed out: withdraw, unless a notify chose us in the meantime; then the
            // notification is ours and counts, so no later one is lost to a timed-out waiter.
            std::uint32_t expected = detail::ConditionSlot::waiting;
            notified = !slot->state.compare_exchange_strong(expected, detail::ConditionSlot::claimed);
            break;
        }
    }
    st.waiters.fetch_sub(1, std::memory_order_relaxed);
    slot->state.store(detail::ConditionSlot::free, std::memory_order_release);

    std::visit(
        [depth](auto& lock) {
            try {
                lock.acquire();
            } catch (OwnerDied& e) {
                // wait() returns holding the lock, so the caller's guard releases it as usual.
                e.keep();
                lock.word().depth = depth;
                throw;
            }
            lock.word().depth = depth;
        },
        lock_);
    return notified;
}

void Condition::notify(int n) {
    require_owned("notify");
    auto& st = state();
    if (n <= 0 || st.waiters.load(std::memory_order_seq_cst) == 0) return;
    std::vector<detail::ConditionSlot*> waiting;
    const auto used = st.slots_used.load(std::memory_order_acquire);
    for (std::uint32_t i = 0; i < used; ++i)
        if (st.slots[i].state.load(std::memory_order_acquire) == detail::ConditionSlot::waiting) waiting.push_back(&st.slots[i]);
    std::sort(waiting.begin(), waiting.end(), [](auto* a, auto* b) { return a->ticket < b->ticket; });
    int woken = 0;
    for (auto* slot : waiting) {
        if (woken == n) break;
        std::uint32_t expected = detail::ConditionSlot::waiting;
        // Fails only for a waiter that just timed out and withdrew: then the next one is chosen.
        if (slot->state.compare_exchange_strong(expected, detail::ConditionSlot::notified, std::memory_order_acq_rel)) {
            detail::futex_wake(slot->state, 1);
            ++woken;
        }
    }
}

void Condition::notify_all() { notify(std::numeric_limits<int>::max()); }

void Condition::ipc_save(codec::Writer& writer) const {
    object_.save(writer);
    const auto which = static_cast<std::uint8_t>(lock_.index());
    writer.write(&which, sizeof which);
    std::visit([&writer](const auto& lock) { lock.ipc_save(writer); }, lock_);
}

Condition Condition::ipc_load(codec::Reader& reader) {
    auto object = SharedObject::load(reader, {Kind::condition}, sizeof(detail::ConditionState));
    std::uint8_t which = 0;
    reader.read(&which, sizeof which);
    if (which == 0) return Condition(std::move(object), Lock::ipc_load(reader));
    if (which == 1) return Condition(std::move(object), RLock::ipc_load(reader));
    throw CodecError("reopen " + detail::describe(Kind::condition, object) + ": its lock is of unknown kind " +
                     std::to_string(which));
}

}  // namespace ipc
