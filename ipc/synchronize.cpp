#include "ipc/synchronize.hpp"

#include <algorithm>
#include <limits>
#include <new>
#include <vector>

namespace ipc {

namespace detail {

struct alignas(64) SemaphoreState {
    std::atomic<std::uint32_t> value{0};
    std::atomic<std::uint32_t> sleepers{0};
    std::uint32_t maximum = 0;  // 0: unbounded
};

struct alignas(64) EventState {
    std::atomic<std::uint32_t> flag{0};
    std::atomic<std::uint32_t> sleepers{0};
};

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

namespace {

template <class State, class... Args>
SharedObject create_object(const std::string& name, Kind kind, Args&&... args) {
    auto segment = Segment::create(name, kind, {}, sizeof(State), [&](std::span<std::byte> payload) {
        new (payload.data()) State{std::forward<Args>(args)...};
    });
    return {std::move(segment), 0};
}

SharedObject open_object(const std::string& name, Kind kind) { return {Segment::open(name, kind, {}), 0}; }

template <class Make, class Open>
auto open_or_create(Make make, Open open) {
    try {
        return make();
    } catch (const FileExistsError&) {
        return open();
    }
}

std::string describe(Kind kind, const SharedObject& object) {
    return std::string(kind_name(kind)) + " '" + object.name() + "'";
}

/// Holds a mutex-like LockWord for a scope; a holder that died inside is reported to `on_dead`.
class InternalLock {
public:
    template <class OnDead>
    InternalLock(LockWord& word, OnDead on_dead) : word_(word) {
        if (acquire_lock(word_, this_thread_id(), true, Deadline::never()) == Acquired::owner_died) on_dead();
    }
    ~InternalLock() { release_lock(word_); }
    InternalLock(const InternalLock&) = delete;
    InternalLock& operator=(const InternalLock&) = delete;

private:
    LockWord& word_;
};

}  // namespace
}  // namespace detail

using detail::Acquired;
using detail::Deadline;
using detail::Kind;

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

Lock::Lock() : object_(detail::create_object<detail::LockWord>("", Kind::lock)) {}
Lock Lock::create(const std::string& name) { return Lock(detail::create_object<detail::LockWord>(name, Kind::lock)); }
Lock Lock::open(const std::string& name) { return Lock(detail::open_object(name, Kind::lock)); }
Lock Lock::open_or_create(const std::string& name) {
    return detail::open_or_create([&] { return create(name); }, [&] { return open(name); });
}

bool Lock::acquire_until(const Deadline& deadline, bool block) {
    std::uint32_t dead = 0;
    switch (detail::acquire_lock(word(), detail::this_process_id(), block, deadline, &dead)) {
        case Acquired::yes: return true;
        case Acquired::timed_out: return false;
        case Acquired::owner_died: break;
    }
    Lock self = *this;
    throw OwnerDied(owner_died_message(detail::describe(Kind::lock, object_), dead), [self]() mutable {
        detail::release_lock(self.word());
    });
}

void Lock::release() {
    if (!detail::release_lock(word()))
        throw ValueError("release " + detail::describe(Kind::lock, object_) + ": it is not locked");
}

bool Lock::locked() const noexcept { return word().state.load(std::memory_order_relaxed) != 0; }
void Lock::unlink() { object_.segment()->unlink(); }

Lock Lock::ipc_load(codec::Reader& reader) {
    return Lock(detail::SharedObject::load(reader, {Kind::lock}, sizeof(detail::LockWord)));
}

// --- RLock -------------------------------------------------------------------------------------

RLock::RLock() : object_(detail::create_object<detail::LockWord>("", Kind::rlock)) {}
RLock RLock::create(const std::string& name) { return RLock(detail::create_object<detail::LockWord>(name, Kind::rlock)); }
RLock RLock::open(const std::string& name) { return RLock(detail::open_object(name, Kind::rlock)); }
RLock RLock::open_or_create(const std::string& name) {
    return detail::open_or_create([&] { return create(name); }, [&] { return open(name); });
}

bool RLock::acquire_until(const Deadline& deadline, bool block) {
    auto& lock = word();
    const auto self_id = detail::this_thread_id();
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
    throw OwnerDied(owner_died_message(detail::describe(Kind::rlock, object_), dead), [self]() mutable {
        // Only the thread that caught it may release a recursive lock; elsewhere leave it to keep().
        if (self.is_owned()) self.release();
    });
}

void RLock::release() {
    auto& lock = word();
    if (detail::lock_owner(lock) != detail::this_thread_id())
        throw ValueError("release " + detail::describe(Kind::rlock, object_) +
                         (detail::lock_owner(lock) == 0 ? ": it is not locked" : ": this thread does not hold it"));
    if (--lock.depth == 0) detail::release_lock(lock);
}

bool RLock::is_owned() const noexcept { return detail::lock_owner(word()) == detail::this_thread_id(); }
void RLock::unlink() { object_.segment()->unlink(); }

RLock RLock::ipc_load(codec::Reader& reader) {
    // A Value's or Array's lock lives inside their segment.
    return RLock(detail::SharedObject::load(reader, {Kind::rlock, Kind::value, Kind::array}, sizeof(detail::LockWord)));
}

// --- Semaphore ---------------------------------------------------------------------------------

namespace {
detail::SharedObject make_semaphore(const std::string& name, unsigned value, bool bounded) {
    if (value > std::numeric_limits<std::int32_t>::max())
        throw ValueError("Semaphore value " + std::to_string(value) + " is too large");
    return detail::create_object<detail::SemaphoreState>(name, bounded ? Kind::bounded_semaphore : Kind::semaphore,
                                                         value, 0u, bounded ? value : 0u);
}
}  // namespace

Semaphore::Semaphore(unsigned value) : object_(make_semaphore("", value, false)) {}
Semaphore::Semaphore(const std::string& name, unsigned value, bool bounded, bool)
    : object_(make_semaphore(name, value, bounded)) {}
Semaphore Semaphore::create(const std::string& name, unsigned value) { return Semaphore(name, value, false, true); }
Semaphore Semaphore::open(const std::string& name) { return Semaphore(detail::open_object(name, Kind::semaphore)); }
Semaphore Semaphore::open_or_create(const std::string& name, unsigned value) {
    return detail::open_or_create([&] { return create(name, value); }, [&] { return open(name); });
}

bool Semaphore::acquire_until(const Deadline& deadline, bool block) {
    auto& st = state();
    auto take = [&st] {
        std::uint32_t value = st.value.load(std::memory_order_relaxed);
        while (value > 0)
            if (st.value.compare_exchange_weak(value, value - 1, std::memory_order_acquire, std::memory_order_relaxed))
                return true;
        return false;
    };
    if (take()) return true;
    if (!block) return false;
    if (detail::spin_until(take)) return true;
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
void Semaphore::unlink() { object_.segment()->unlink(); }

Semaphore Semaphore::ipc_load(codec::Reader& reader) {
    // A BoundedSemaphore passed as a Semaphore keeps its bound: it lives in the shared state.
    return Semaphore(
        detail::SharedObject::load(reader, {Kind::semaphore, Kind::bounded_semaphore}, sizeof(detail::SemaphoreState)));
}

BoundedSemaphore::BoundedSemaphore(unsigned value) : Semaphore("", value, true, true) {}
BoundedSemaphore BoundedSemaphore::create(const std::string& name, unsigned value) { return BoundedSemaphore(name, value); }
BoundedSemaphore BoundedSemaphore::open(const std::string& name) {
    return BoundedSemaphore(detail::open_object(name, Kind::bounded_semaphore));
}
BoundedSemaphore BoundedSemaphore::open_or_create(const std::string& name, unsigned value) {
    return detail::open_or_create([&] { return create(name, value); }, [&] { return open(name); });
}
BoundedSemaphore BoundedSemaphore::ipc_load(codec::Reader& reader) {
    return BoundedSemaphore(detail::SharedObject::load(reader, {Kind::bounded_semaphore}, sizeof(detail::SemaphoreState)));
}

// --- Event -------------------------------------------------------------------------------------

Event::Event() : object_(detail::create_object<detail::EventState>("", Kind::event)) {}
Event Event::create(const std::string& name) { return Event(detail::create_object<detail::EventState>(name, Kind::event)); }
Event Event::open(const std::string& name) { return Event(detail::open_object(name, Kind::event)); }

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
    if (detail::spin_until(set)) return true;
    st.sleepers.fetch_add(1, std::memory_order_seq_cst);
    while (!set())
        if (!detail::futex_wait(st.flag, 0, deadline)) break;
    st.sleepers.fetch_sub(1, std::memory_order_relaxed);
    return set();
}

void Event::unlink() { object_.segment()->unlink(); }
Event Event::ipc_load(codec::Reader& reader) {
    return Event(detail::SharedObject::load(reader, {Kind::event}, sizeof(detail::EventState)));
}

// --- Condition ---------------------------------------------------------------------------------

namespace {
detail::SharedObject make_condition() { return detail::create_object<detail::ConditionState>("", Kind::condition); }
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
    codec::save(writer, static_cast<std::uint8_t>(lock_.index()));
    std::visit([&writer](const auto& lock) { lock.ipc_save(writer); }, lock_);
}

Condition Condition::ipc_load(codec::Reader& reader) {
    auto object = detail::SharedObject::load(reader, {Kind::condition}, sizeof(detail::ConditionState));
    if (codec::load<std::uint8_t>(reader) == 0) return Condition(std::move(object), Lock::ipc_load(reader));
    return Condition(std::move(object), RLock::ipc_load(reader));
}

// --- Barrier -----------------------------------------------------------------------------------

Barrier::Barrier(unsigned parties, void (*action)(), std::optional<std::chrono::nanoseconds> timeout) : action_(action) {
    if (parties == 0) throw ValueError("Barrier needs at least one party");
    object_ = detail::create_object<detail::BarrierState>("", Kind::barrier);
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
    auto object = detail::SharedObject::load(reader, {Kind::barrier}, sizeof(detail::BarrierState));
    void (*action)() = nullptr;
    if (codec::load<bool>(reader))
        action = reinterpret_cast<void (*)()>(const_cast<void*>(detail::resolve_code(codec::load<detail::CodeRef>(reader))));
    return Barrier(std::move(object), action);
}

}  // namespace ipc
