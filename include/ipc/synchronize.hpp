// ipc/synchronize.hpp — Python's multiprocessing.synchronize for processes: Lock, RLock, Semaphore,
// BoundedSemaphore, Event, Condition and Barrier in shared memory, named or anonymous, robust to dead holders.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "ipc/detail/codec_stream.hpp"
#include "ipc/detail/deadline.hpp"
#include "ipc/detail/lock_word.hpp"
#include "ipc/detail/shared_object.hpp"
#include "ipc/error.hpp"

namespace ipc {

/// Thrown by acquire()/lock() when the previous holder died holding the lock. The lock is yours
/// while the exception lives (repair the shared state in the handler); it is released when the
/// exception is destroyed, unless you call keep() to go on holding it.
class OwnerDied : public Error {
public:
    OwnerDied(const std::string& message, std::function<void()> release);
    /// Keeps the lock after the handler: the caller now releases it as usual.
    void keep() noexcept;

private:
    struct Holder;
    std::shared_ptr<Holder> holder_;
};

namespace detail {
/// Builds handles from shared objects inside the library (a Value's lock, say).
struct HandleAccess {
    template <class Handle>
    static Handle make(SharedObject object) {
        return Handle(std::move(object));
    }
};

/// What Lock, RLock, Semaphore and BoundedSemaphore share, as CPython's SemLock does for them: a
/// handle to their state in a segment, named or anonymous; Python's acquire(block) and
/// acquire(timeout); the standard Lockable/TimedLockable names (so std::lock_guard and
/// std::unique_lock work), all from the handle's own acquire_until() and release().
template <class Handle>
class SemLock {
public:
    /// Blocks until acquired; with `block == false` tries once.
    bool acquire(bool block = true) { return self().acquire_until(Deadline::never(), block); }
    /// Waits at most `timeout` (negative counts as zero); false when it ran out.
    template <class Rep, class Period>
    bool acquire(std::chrono::duration<Rep, Period> timeout) {
        return self().acquire_until(deadline_after(timeout), true);
    }
    void lock() { acquire(); }
    bool try_lock() { return acquire(false); }
    void unlock() { self().release(); }
    template <class Rep, class Period>
    bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
        return acquire(timeout);
    }

    /// Opens one another program created with create(name): FileNotFoundError when the name does
    /// not exist, ValueError when it names another kind of object.
    static Handle open(const std::string& name) { return open_as<Handle>(name); }
    /// Creates it, or opens it when the name is taken (then `initial` is not used).
    template <class... Initial>
    static Handle open_or_create(const std::string& name, Initial... initial) {
        return open_or_create_as<Handle>(name, initial...);
    }

    [[nodiscard]] const std::string& name() const noexcept { return object_.name(); }
    /// Removes a named one's name (it lives on for those who have it).
    void unlink() { object_.segment()->unlink(); }
    void ipc_save(codec::Writer& writer) const { object_.save(writer); }

protected:
    explicit SemLock(SharedObject object) noexcept : object_(std::move(object)) {}
    template <class As>
    static As open_as(const std::string& name) {
        return As(SharedObject::open(name, As::kind));
    }
    template <class As, class... Initial>
    static As open_or_create_as(const std::string& name, Initial... initial) {
        try {
            return As::create(name, initial...);
        } catch (const FileExistsError&) {
            return open_as<As>(name);
        }
    }

    SharedObject object_;

private:
    Handle& self() noexcept { return static_cast<Handle&>(*this); }
};
}  // namespace detail

/// A non-recursive lock. As in Python, any process may release it, and releasing it unlocked is
/// an error. Meets Lockable and TimedLockable, so std::lock_guard and std::unique_lock work.
/// acquire() throws OwnerDied when the previous holder died holding it.
class Lock : public detail::SemLock<Lock> {
public:
    /// An anonymous lock, shared with children by passing it to a Process.
    Lock();
    /// A named lock (a mutex other programs open with Lock::open); FileExistsError when taken.
    static Lock create(const std::string& name);

    /// ValueError when the lock is not held.
    void release();
    /// True while some process holds it.
    [[nodiscard]] bool locked() const noexcept;

    static Lock ipc_load(codec::Reader& reader);

private:
    friend class Condition;
    friend class detail::SemLock<Lock>;
    friend struct detail::HandleAccess;
    static constexpr detail::Kind kind = detail::Kind::lock;
    explicit Lock(detail::SharedObject object) noexcept : SemLock(std::move(object)) {}
    bool acquire_until(const detail::Deadline& deadline, bool block);
    detail::LockWord& word() const noexcept { return object_.state<detail::LockWord>(); }
};

/// A recursive lock: the thread that holds it may acquire it again, and only it may release it.
class RLock : public detail::SemLock<RLock> {
public:
    RLock();
    static RLock create(const std::string& name);

    /// ValueError when this thread does not hold it.
    void release();
    /// True while some thread of some process holds it.
    [[nodiscard]] bool locked() const noexcept;
    /// True when the calling thread holds it.
    [[nodiscard]] bool is_owned() const noexcept;

    static RLock ipc_load(codec::Reader& reader);

private:
    friend class Condition;
    friend class detail::SemLock<RLock>;
    friend struct detail::HandleAccess;
    static constexpr detail::Kind kind = detail::Kind::rlock;
    explicit RLock(detail::SharedObject object) noexcept : SemLock(std::move(object)) {}
    bool acquire_until(const detail::Deadline& deadline, bool block);
    detail::LockWord& word() const noexcept { return object_.state<detail::LockWord>(); }
};

namespace detail {
struct SemaphoreState;
}

/// What a Semaphore does with the units a process holds when that process dies. As in Python and
/// POSIX, by default they are gone with it (keeps_units): a holder killed between acquire and
/// release lowers the count for good. returns_units gives them back, as SysV's SEM_UNDO does: the
/// next acquire that waits finds them within the liveness schedule (a few looks a second). It
/// suits a semaphore used as a lock for N (acquire and release in the same process); each change
/// then takes a short robust lock, and at most 64 processes may hold units at once.
enum class HolderDeath { keeps_units, returns_units };

/// A counting semaphore. BoundedSemaphore refuses a release above its initial value.
class Semaphore : public detail::SemLock<Semaphore> {
public:
    explicit Semaphore(unsigned value = 1, HolderDeath on_death = HolderDeath::keeps_units);
    static Semaphore create(const std::string& name, unsigned value = 1,
                            HolderDeath on_death = HolderDeath::keeps_units);

    void release(unsigned n = 1);
    [[nodiscard]] unsigned get_value() const noexcept;

    static Semaphore ipc_load(codec::Reader& reader);

protected:
    friend class detail::SemLock<Semaphore>;
    static constexpr detail::Kind kind = detail::Kind::semaphore;
    Semaphore(const std::string& name, unsigned value, bool bounded, HolderDeath on_death);
    explicit Semaphore(detail::SharedObject object) noexcept : SemLock(std::move(object)) {}
    bool acquire_until(const detail::Deadline& deadline, bool block);
    bool acquire_with_undo(const detail::Deadline& deadline, bool block);
    detail::SemaphoreState& state() const noexcept { return object_.state<detail::SemaphoreState>(); }
};

class BoundedSemaphore : public Semaphore {
public:
    explicit BoundedSemaphore(unsigned value = 1, HolderDeath on_death = HolderDeath::keeps_units);
    static BoundedSemaphore create(const std::string& name, unsigned value = 1,
                                   HolderDeath on_death = HolderDeath::keeps_units);
    static BoundedSemaphore open(const std::string& name) { return open_as<BoundedSemaphore>(name); }
    static BoundedSemaphore open_or_create(const std::string& name, unsigned value = 1,
                                           HolderDeath on_death = HolderDeath::keeps_units) {
        return open_or_create_as<BoundedSemaphore>(name, value, on_death);
    }
    static BoundedSemaphore ipc_load(codec::Reader& reader);

private:
    friend class detail::SemLock<Semaphore>;
    static constexpr detail::Kind kind = detail::Kind::bounded_semaphore;
    explicit BoundedSemaphore(detail::SharedObject object) noexcept : Semaphore(std::move(object)) {}
    BoundedSemaphore(const std::string& name, unsigned value, HolderDeath on_death)
        : Semaphore(name, value, true, on_death) {}
};

namespace detail {
struct EventState;
}

/// A flag processes wait for: set() wakes every waiter, clear() resets it.
class Event {
public:
    Event();
    static Event create(const std::string& name);
    static Event open(const std::string& name);

    void set();
    void clear();
    [[nodiscard]] bool is_set() const noexcept;
    /// Blocks until set; returns is_set().
    bool wait();
    template <class Rep, class Period>
    bool wait(std::chrono::duration<Rep, Period> timeout) {
        return wait_until(detail::deadline_after(timeout));
    }

    [[nodiscard]] const std::string& name() const noexcept { return object_.name(); }
    void unlink();

    void ipc_save(codec::Writer& writer) const { object_.save(writer); }
    static Event ipc_load(codec::Reader& reader);

private:
    explicit Event(detail::SharedObject object) noexcept : object_(std::move(object)) {}
    bool wait_until(const detail::Deadline& deadline);
    detail::EventState& state() const noexcept { return object_.state<detail::EventState>(); }

    detail::SharedObject object_;
};

namespace detail {
struct ConditionState;
}

/// A condition variable over a Lock or RLock (a new RLock by default, as in Python). notify(n)
/// wakes the n longest waiters; a waiter that timed out never takes a notification meant for others.
class Condition {
public:
    Condition();
    explicit Condition(Lock lock);
    explicit Condition(RLock lock);

    bool acquire(bool block = true);
    void release();
    void lock() { acquire(); }
    void unlock() { release(); }

    /// Releases the lock, waits for a notification, reacquires. The caller must hold the lock.
    bool wait();
    template <class Rep, class Period>
    bool wait(std::chrono::duration<Rep, Period> timeout) {
        return wait_until(detail::deadline_after(timeout));
    }
    /// Waits until `predicate()` holds; returns its last value.
    template <class Predicate>
    bool wait_for(Predicate predicate) {
        while (!predicate()) wait();
        return true;
    }
    template <class Predicate, class Rep, class Period>
    bool wait_for(Predicate predicate, std::chrono::duration<Rep, Period> timeout) {
        const auto deadline = detail::deadline_after(timeout);
        bool result = predicate();
        while (!result) {
            if (deadline.expired()) break;
            wait_until(deadline);
            result = predicate();
        }
        return result;
    }
    /// Wakes up to `n` waiters. The caller must hold the lock.
    void notify(int n = 1);
    void notify_all();

    void ipc_save(codec::Writer& writer) const;
    static Condition ipc_load(codec::Reader& reader);

private:
    using AnyLock = std::variant<Lock, RLock>;
    Condition(detail::SharedObject object, AnyLock lock) noexcept : object_(std::move(object)), lock_(std::move(lock)) {}
    bool wait_until(const detail::Deadline& deadline);
    detail::ConditionState& state() const noexcept { return object_.state<detail::ConditionState>(); }
    void require_owned(const char* operation) const;

    detail::SharedObject object_;
    AnyLock lock_;
};

namespace detail {
struct BarrierState;
}

/// Python's Barrier for processes: `parties` processes meet in wait(); the last to arrive runs
/// `action` (a plain function) before anyone is released. A timeout, abort() or reset() breaks it
/// for every waiter with BrokenBarrierError.
class Barrier {
public:
    explicit Barrier(unsigned parties, void (*action)() = nullptr,
                     std::optional<std::chrono::nanoseconds> timeout = std::nullopt);

    /// Returns this party's arrival index, 0 .. parties-1. Waits at most the barrier's timeout.
    unsigned wait();
    template <class Rep, class Period>
    unsigned wait(std::chrono::duration<Rep, Period> timeout) {
        return wait_until(detail::deadline_after(timeout));
    }
    void reset();
    void abort();
    [[nodiscard]] unsigned parties() const noexcept;
    [[nodiscard]] unsigned n_waiting() const noexcept;
    [[nodiscard]] bool broken() const noexcept;

    void ipc_save(codec::Writer& writer) const;
    static Barrier ipc_load(codec::Reader& reader);

private:
    Barrier(detail::SharedObject object, void (*action)()) noexcept : object_(std::move(object)), action_(action) {}
    unsigned wait_until(const detail::Deadline& deadline);
    detail::BarrierState& state() const noexcept { return object_.state<detail::BarrierState>(); }

    detail::SharedObject object_;
    void (*action_)() = nullptr;
};

}  // namespace ipc
