// sync/sem_lock.cpp — Lock and RLock on a robust lock word, Semaphore and BoundedSemaphore on a
// counter, and the OwnerDied that hands a dead holder's lock to the next one.
#include <limits>

#include "ipc/synchronize.hpp"
#include "shm/liveness.hpp"
#include "sync/objects.hpp"
#include "sync/undo_record.hpp"
#include "sys/futex.hpp"
#include "sys/spin.hpp"

namespace ipc {

namespace detail {
struct alignas(64) SemaphoreState {
    SemaphoreState(std::uint32_t initial, std::uint32_t bound, std::uint32_t returns_units)
        : value(initial), maximum(bound), undo(returns_units) {}
    std::atomic<std::uint32_t> value{0};
    std::atomic<std::uint32_t> sleepers{0};
    std::uint32_t maximum = 0;  // 0: unbounded
    std::uint32_t undo = 0;     // HolderDeath::returns_units: every change goes through `record`
    UndoRecord record;
};
}  // namespace detail

using detail::Acquired;
using detail::Deadline;
using detail::Kind;
using detail::SharedObject;

// --- OwnerDied ---------------------------------------------------------------------------------

struct OwnerDied::Holder {
    std::function<void()> release;
    ~Holder() {
        if (release) release();
    }
};

OwnerDied::OwnerDied(const std::string& message, std::function<void()> release)
    : Error(message), holder_(std::make_shared<Holder>()) {
    // Set in place: a temporary Holder would release the lock when it dies.
    holder_->release = std::move(release);
}

void OwnerDied::keep() noexcept {
    if (holder_) holder_->release = nullptr;
}

namespace {
std::string owner_died_message(const std::string& what, std::uint32_t dead) {
    return what + ": its holder (id " + std::to_string(dead) +
           ") died holding it; you hold it now — repair the state it protects (it is released when this "
           "exception is destroyed, unless you call keep())";
}
}  // namespace

// --- Lock --------------------------------------------------------------------------------------

Lock::Lock() : Lock(create("")) {}
Lock Lock::create(const std::string& name) { return Lock(SharedObject::create<detail::LockWord>(name, kind)); }

bool Lock::acquire_until(const Deadline& deadline, bool block) {
    std::uint32_t dead = 0;
    switch (detail::acquire_lock(word(), detail::this_process_id(), block, deadline, &dead)) {
        case Acquired::yes: return true;
        case Acquired::timed_out: return false;
        case Acquired::owner_died: break;
    }
    Lock self = *this;
    throw OwnerDied(owner_died_message(detail::describe(kind, object_), dead), [self]() mutable {
        detail::release_lock(self.word());
    });
}

void Lock::release() {
    if (!detail::release_lock(word())) throw ValueError("release " + detail::describe(kind, object_) + ": it is not locked");
}

bool Lock::locked() const noexcept { return word().state.load(std::memory_order_relaxed) != 0; }

Lock Lock::ipc_load(codec::Reader& reader) { return Lock(SharedObject::load(reader, {kind}, sizeof(detail::LockWord))); }

// --- RLock -------------------------------------------------------------------------------------

RLock::RLock() : RLock(create("")) {}
RLock RLock::create(const std::string& name) { return RLock(SharedObject::create<detail::LockWord>(name, kind)); }

bool RLock::acquire_until(const Deadline& deadline, bool block) {
    auto& lock = word();
    const auto self_id = detail::this_thread_id();
    // One try before the look at the owner: a look first would fetch a free word's line from the
    // last holder's CPU twice, once to read and once to take it.
    if (detail::acquire_lock(lock, self_id, false, Deadline::never()) == Acquired::yes) {
        lock.depth = 1;
        return true;
    }
    if (detail::lock_owner(lock) == self_id) {
        ++lock.depth;
        return true;
    }
    std::uint32_t dead = 0;
    switch (detail::acquire_lock(lock, self_id, block, deadline, &dead)) {
        case Acquired::yes:
            lock.depth = 1;
            return true;
        case Acquired::timed_out: return false;
        case Acquired::owner_died: break;
    }
    lock.depth = 1;
    RLock self = *this;
    throw OwnerDied(owner_died_message(detail::describe(kind, object_), dead), [self]() mutable {
        // Only the thread that caught it may release a recursive lock; elsewhere leave it to keep().
        if (self.is_owned()) self.release();
    });
}

void RLock::release() {
    auto& lock = word();
    if (detail::lock_owner(lock) != detail::this_thread_id())
        throw NotOwnedError("release " + detail::describe(kind, object_) +
                            (detail::lock_owner(lock) == 0 ? ": it is not locked" : ": this thread does not hold it"));
    if (--lock.depth == 0) detail::release_lock(lock);
}

bool RLock::locked() const noexcept { return word().state.load(std::memory_order_relaxed) != 0; }

bool RLock::is_owned() const noexcept { return detail::lock_owner(word()) == detail::this_thread_id(); }

RLock RLock::ipc_load(codec::Reader& reader) {
    // A Value's or Array's lock lives inside their segment.
    return RLock(SharedObject::load(reader, {kind, Kind::value, Kind::array}, sizeof(detail::LockWord)));
}

// --- Semaphore ---------------------------------------------------------------------------------

Semaphore::Semaphore(unsigned value, HolderDeath on_death) : Semaphore("", value, false, on_death) {}
Semaphore::Semaphore(const std::string& name, unsigned value, bool bounded, HolderDeath on_death)
    : SemLock([&] {
          if (value > std::numeric_limits<std::int32_t>::max())
              throw ValueError("Semaphore value " + std::to_string(value) + " is too large");
          return SharedObject::create<detail::SemaphoreState>(
              name, bounded ? Kind::bounded_semaphore : Kind::semaphore, value, bounded ? value : 0u,
              on_death == HolderDeath::returns_units ? 1u : 0u);
      }()) {}
Semaphore Semaphore::create(const std::string& name, unsigned value, HolderDeath on_death) {
    return Semaphore(name, value, false, on_death);
}

bool Semaphore::acquire_with_undo(const Deadline& deadline, bool block) {
    auto& st = state();
    auto take = [&] {
        switch (detail::undo_take(st.record, st.value, st.maximum)) {
            case detail::UndoTake::taken: return true;
            case detail::UndoTake::none_free: return false;
            case detail::UndoTake::record_full: break;
        }
        throw Error("acquire " + detail::describe(Kind::semaphore, object_) + ": more than " +
                    std::to_string(detail::UndoRecord::slots) +
                    " live processes hold its units at once, more than it can record (it returns a dead holder's units)");
    };
    // Units of holders that died come back at once for a caller that does not wait, and on the
    // liveness schedule for one that sleeps.
    auto reclaim = [&] {
        const auto returned = detail::undo_reclaim(st.record, st.value, st.maximum);
        if (returned > 1 && st.sleepers.load(std::memory_order_seq_cst) > 0)
            detail::futex_wake(st.value, static_cast<int>(returned - 1));
        return returned > 0;
    };
    if (take()) return true;
    if (!block) return reclaim() && take();
    detail::LookBackoff looks;
    st.sleepers.fetch_add(1, std::memory_order_seq_cst);
    struct Leave {
        std::atomic<std::uint32_t>& sleepers;
        ~Leave() { sleepers.fetch_sub(1, std::memory_order_relaxed); }
    } leave{st.sleepers};
    for (;;) {
        if (take()) return true;
        if (!detail::futex_wait(st.value, 0, deadline.or_sooner(looks.peek()))) {
            if (deadline.expired()) return take();
            reclaim();
            looks.next();
        }
    }
}

bool Semaphore::acquire_until(const Deadline& deadline, bool block) {
    auto& st = state();
    if (st.undo) return acquire_with_undo(deadline, block);
    auto take = [&st] {
        std::uint32_t value = st.value.load(std::memory_order_relaxed);
        while (value > 0)
            if (st.value.compare_exchange_weak(value, value - 1, std::memory_order_acquire, std::memory_order_relaxed))
                return true;
        return false;
    };
    if (take()) return true;
    if (!block) return false;
    if (detail::spin_until(&st.value, take)) return true;
    // seq_cst on both sides: a release that saw no sleeper happened before our count, so we see its value.
    st.sleepers.fetch_add(1, std::memory_order_seq_cst);
    bool taken = false;
    for (;;) {
        if ((taken = take())) break;
        if (!detail::futex_wait(st.value, 0, deadline)) {
            taken = take();
            break;
        }
    }
    st.sleepers.fetch_sub(1, std::memory_order_relaxed);
    return taken;
}

void Semaphore::release(unsigned n) {
    if (n == 0) return;
    auto& st = state();
    if (st.undo) {
        if (!detail::undo_give(st.record, st.value, n, st.maximum))
            throw ValueError("release " + detail::describe(Kind::bounded_semaphore, object_) +
                             ": released more often than acquired (its value may not exceed " +
                             std::to_string(st.maximum != 0 ? st.maximum : std::numeric_limits<std::int32_t>::max()) + ")");
        if (st.sleepers.load(std::memory_order_seq_cst) > 0) detail::futex_wake(st.value, static_cast<int>(n));
        return;
    }
    std::uint32_t value = st.value.load(std::memory_order_relaxed);
    do {
        if (st.maximum != 0 && value + n > st.maximum)
            throw ValueError("release " + detail::describe(Kind::bounded_semaphore, object_) +
                             ": released more often than acquired (its value may not exceed " +
                             std::to_string(st.maximum) + ")");
    } while (!st.value.compare_exchange_weak(value, value + n, std::memory_order_seq_cst, std::memory_order_relaxed));
    if (st.sleepers.load(std::memory_order_seq_cst) > 0) detail::futex_wake(st.value, static_cast<int>(n));
}

unsigned Semaphore::get_value() const noexcept { return state().value.load(std::memory_order_relaxed); }

Semaphore Semaphore::ipc_load(codec::Reader& reader) {
    // A BoundedSemaphore passed as a Semaphore keeps its bound: it lives in the shared state.
    return Semaphore(SharedObject::load(reader, {Kind::semaphore, Kind::bounded_semaphore}, sizeof(detail::SemaphoreState)));
}

BoundedSemaphore::BoundedSemaphore(unsigned value, HolderDeath on_death) : Semaphore("", value, true, on_death) {}
BoundedSemaphore BoundedSemaphore::create(const std::string& name, unsigned value, HolderDeath on_death) {
    return BoundedSemaphore(name, value, on_death);
}
BoundedSemaphore BoundedSemaphore::ipc_load(codec::Reader& reader) {
    return BoundedSemaphore(SharedObject::load(reader, {kind}, sizeof(detail::SemaphoreState)));
}

}  // namespace ipc
