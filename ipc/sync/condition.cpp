// sync/condition.cpp — Condition: each waiter sleeps on its own slot, so notify(n) wakes exactly the
// n longest waiters, one that timed out never takes a notification meant for another, and one that
// died takes none (its slot is freed).
#include <algorithm>
#include <limits>
#include <vector>

#include "ipc/synchronize.hpp"
#include "shm/liveness.hpp"
#include "sync/condition_state.hpp"
#include "sync/objects.hpp"
#include "sys/futex.hpp"
#include "sys/spin.hpp"

namespace ipc {


using detail::Acquired;
using detail::Deadline;
using detail::Kind;
using detail::SharedObject;

// --- Condition ---------------------------------------------------------------------------------

namespace {
detail::SharedObject make_condition() { return SharedObject::create<detail::ConditionState>("", Kind::condition); }

using detail::ConditionSlot;

/// Frees the slot of a waiter that died, whatever it was doing; the caller holds the lock, so no
/// other waiter claims or notifies meanwhile.
void free_dead_slot(detail::ConditionState& st, ConditionSlot& slot, std::uint64_t dead) {
    const auto state = slot.state.load(std::memory_order_acquire);
    if (!slot.waiter.compare_exchange_strong(dead, 0, std::memory_order_acq_rel)) return;
    if (state == ConditionSlot::waiting || state == ConditionSlot::notified)
        st.waiters.fetch_sub(1, std::memory_order_relaxed);
    slot.state.store(ConditionSlot::free, std::memory_order_release);
}

/// A slot for this thread: a free one, else one whose waiter died. Null when all wait alive.
ConditionSlot* claim_slot(detail::ConditionState& st) {
    const auto me = detail::pack_holder(detail::this_thread_id(), detail::this_thread_birth());
    auto take = [&](std::size_t i, std::uint64_t seen) {
        if (!st.slots[i].waiter.compare_exchange_strong(seen, me, std::memory_order_acq_rel)) return false;
        std::uint32_t used = st.slots_used.load();
        while (used < i + 1 && !st.slots_used.compare_exchange_weak(used, static_cast<std::uint32_t>(i + 1))) {
        }
        return true;
    };
    for (std::size_t i = 0; i < detail::ConditionState::slot_count; ++i)
        if (st.slots[i].waiter.load(std::memory_order_relaxed) == 0 && take(i, 0)) return &st.slots[i];
    // Every slot taken: look at their waiters (a look at /proc each, so only now).
    for (std::size_t i = 0; i < detail::ConditionState::slot_count; ++i) {
        const auto seen = st.slots[i].waiter.load(std::memory_order_acquire);
        if (seen != 0 && !detail::alive(seen)) {
            free_dead_slot(st, st.slots[i], seen);
            if (take(i, 0)) return &st.slots[i];
        }
    }
    return nullptr;
}
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
    detail::ConditionSlot* slot = claim_slot(st);
    if (!slot)
        throw Error("wait on " + detail::describe(Kind::condition, object_) + ": more than " +
                    std::to_string(detail::ConditionState::slot_count) + " waiters at once");
    // The lock is held, so tickets follow the order in which waiters arrived.
    slot->ticket = st.next_ticket.fetch_add(1, std::memory_order_relaxed);
    slot->state.store(detail::ConditionSlot::claimed, std::memory_order_relaxed);
    // Counted before it shows as waiting: a waiter that dies in between is counted once too often
    // (harmless: the count only says "maybe someone waits"), never too rarely.
    st.waiters.fetch_add(1, std::memory_order_seq_cst);
    slot->state.store(detail::ConditionSlot::waiting, std::memory_order_seq_cst);

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
    detail::spin_until(&slot->state, is_notified, detail::spin_budget / 4);
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
    slot->state.store(detail::ConditionSlot::free, std::memory_order_relaxed);
    slot->waiter.store(0, std::memory_order_release);

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
        // A waiter that died would take the notification with it: skip it, and free its slot.
        if (const auto waiter = slot->waiter.load(std::memory_order_acquire); waiter != 0 && !detail::alive(waiter)) {
            free_dead_slot(st, *slot, waiter);
            continue;
        }
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
