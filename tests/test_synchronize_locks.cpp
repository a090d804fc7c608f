// Lock, RLock, Semaphore, BoundedSemaphore and Event: semantics in one process, mutual exclusion and
// wake-ups across fork and spawn children, recovery from a holder that died, and named objects.
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "ipc/sharedctypes.hpp"
#include "ipc/synchronize.hpp"

using namespace std::chrono_literals;
using ipc::Process;
using ipc::StartMethod;
namespace test = ipc::test;

namespace {

using Clock = std::chrono::steady_clock;

/// Several children of one scenario; any still running when it goes out of scope are killed.
class Children {
public:
    template <class F, class... Args>
    void add(StartMethod method, F target, Args&&... args) {
        processes_.emplace_back(ipc::ProcessOptions{.start_method = method}, target, std::forward<Args>(args)...);
    }
    void start_all() {
        for (auto& process : processes_) process.start();
    }
    /// True once every child sleeps on a futex (see test::sleeps_on_futex).
    bool all_asleep() {
        return std::all_of(processes_.begin(), processes_.end(),
                           [](Process& process) { return test::sleeps_on_futex(*process.pid()); });
    }
    /// Joins every child within the bound and returns their exit codes.
    std::vector<std::optional<int>> join_all() {
        std::vector<std::optional<int>> codes;
        for (auto& process : processes_) codes.push_back(test::join_bounded(process));
        return codes;
    }
    ~Children() {
        for (auto& process : processes_) {
            try {
                if (process.pid() && process.is_alive()) {
                    process.kill();
                    process.join(test::bound);
                }
            } catch (...) {
            }
        }
    }

private:
    std::vector<Process> processes_;
};

/// Removes a named object's name at the end of a test even when an assertion failed before the
/// test's own unlink(); the test still unlinks and checks that itself.
struct UnlinkAtEnd {
    std::string name;
    ~UnlinkAtEnd() { ::shm_unlink(("/" + name).c_str()); }
};

bool in_dev_shm(const std::string& name) { return std::filesystem::exists("/dev/shm/" + name); }

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

/// `wait(timeout)` gives up after about its timeout, and at once for a negative one (as zero).
template <class Wait>
void check_timeouts(Wait wait) {
    auto start = Clock::now();
    CHECK_FALSE(wait(100ms));
    const double waited = seconds_since(start);
    CHECK(waited >= 0.09);
    CHECK(waited < 5.0);
    start = Clock::now();
    CHECK_FALSE(wait(-1s));
    CHECK(seconds_since(start) < 1.0);
}

// --- child targets: plain functions, results through exit codes ---------------------------------

int release_lock(ipc::Lock lock) {
    if (!lock.locked()) return 2;
    lock.release();
    return lock.locked() ? 3 : 0;
}

/// 0 when try_lock failed (the lock is held elsewhere), 1 when it succeeded.
int try_lock_lock(ipc::Lock lock) {
    if (!lock.try_lock()) return 0;
    lock.release();
    return 1;
}

int try_lock_rlock(ipc::RLock lock) {
    if (!lock.try_lock()) return 0;
    lock.release();
    return 1;
}

int increment_under_lock(ipc::Lock lock, ipc::RawValue<long> counter, int times) {
    for (int i = 0; i < times; ++i) {
        if (!lock.acquire(test::bound)) return 3;
        ++counter.get_obj();
        lock.release();
    }
    return 0;
}

int increment_under_named_lock(std::string name, ipc::RawValue<long> counter, int times) {
    auto lock = ipc::Lock::open(name);
    return increment_under_lock(lock, counter, times);
}

/// Holds `lock` until `done` is set, having told the parent through `held`.
int hold_lock_until(ipc::Lock lock, ipc::Event held, ipc::Event done) {
    if (!lock.acquire(test::bound)) return 3;
    held.set();
    if (!done.wait(test::bound)) return 4;
    lock.release();
    return 0;
}

/// 0 when releasing the RLock the parent holds is a NotOwnedError, as it must be.
int release_rlock_held_by_parent(ipc::RLock lock) {
    if (lock.is_owned()) return 2;
    try {
        lock.release();
    } catch (const ipc::NotOwnedError&) {
        return 0;
    }
    return 1;
}

[[noreturn]] void hold_lock_forever(ipc::Lock lock, ipc::Event held) {
    if (!lock.acquire(test::bound)) std::_Exit(3);
    held.set();
    for (;;) ::pause();
}

[[noreturn]] void hold_rlock_forever(ipc::RLock lock, ipc::Event held) {
    if (!lock.acquire(test::bound)) std::_Exit(3);
    if (!lock.acquire(test::bound)) std::_Exit(4);  // twice: the survivor must not inherit the depth
    held.set();
    for (;;) ::pause();
}

/// Starts `hold(lock, held)` in a child, waits until it holds the lock, runs `while_held`, then
/// SIGKILLs the child and reaps it: the lock is left with a dead holder.
template <class LockType>
void kill_holder(StartMethod method, void (*hold)(LockType, ipc::Event), LockType& lock,
                 const std::function<void()>& while_held = [] {}) {
    ipc::Event held;
    Process child({.start_method = method}, hold, lock, held);
    test::Reaper reaper(child);
    child.start();
    REQUIRE(held.wait(test::bound));
    while_held();
    child.kill();
    CHECK(test::join_bounded(child) == -SIGKILL);
}

/// Acquires `lock`, whose holder died: requires OwnerDied, and runs `handle(error)` in its handler,
/// while the lock is ours.
template <class LockType, class Handle>
void acquire_expecting_owner_died(LockType& lock, Handle handle) {
    bool raised = false;
    try {
        lock.acquire(test::bound);
    } catch (ipc::OwnerDied& error) {
        raised = true;
        handle(error);
    }
    REQUIRE(raised);
}

/// Acquires `lock` as usual: no exception, and in time.
template <class LockType>
void acquire_cleanly(LockType& lock) {
    bool taken = false;
    CHECK_NOTHROW(taken = lock.acquire(test::bound));
    CHECK(taken);
}

/// Takes a unit and keeps it until a second holder is inside too; 0 when both met.
int hold_until_both_inside(ipc::Semaphore semaphore, ipc::RawValue<int> inside, ipc::Event both) {
    if (!semaphore.acquire(test::bound)) return 3;
    if (inside.fetch_add(1) + 1 == 2) both.set();
    const bool met = both.wait(std::chrono::seconds(10));
    semaphore.release();
    return met ? 0 : 2;
}

int count_holders(ipc::Semaphore semaphore, ipc::RawValue<int> active, ipc::RawValue<int> maximum, int rounds) {
    for (int i = 0; i < rounds; ++i) {
        if (!semaphore.acquire(test::bound)) return 3;
        const int now = active.fetch_add(1) + 1;
        int seen = maximum.load();
        while (now > seen && !maximum.compare_exchange(seen, now)) {
        }
        ::sched_yield();  // give the others a chance to overlap
        active.fetch_sub(1);
        semaphore.release();
    }
    return 0;
}

int acquire_semaphore(ipc::Semaphore semaphore, ipc::Semaphore started) {
    started.release();
    return semaphore.acquire(test::bound) ? 0 : 1;
}

/// 0 when releasing above the bound is a ValueError in the child too.
int release_bounded_above(ipc::BoundedSemaphore semaphore) {
    try {
        semaphore.release();
    } catch (const ipc::ValueError&) {
        return semaphore.get_value() == 1 ? 0 : 2;
    }
    return 1;
}

int wait_for_event(ipc::Event event, ipc::Semaphore started) {
    if (event.is_set()) return 2;
    started.release();
    return event.wait(test::bound) ? 0 : 1;
}

}  // namespace

// --- Lock --------------------------------------------------------------------------------------

TEST_CASE("Lock acquire and release and releasing an unlocked Lock is a ValueError", "[locks]") {
    ipc::Lock lock;
    CHECK_FALSE(lock.locked());
    CHECK(lock.acquire());
    CHECK(lock.locked());
    CHECK_FALSE(lock.acquire(false));  // not recursive
    lock.release();
    CHECK_FALSE(lock.locked());
    CHECK_THROWS_AS(lock.release(), ipc::ValueError);
    CHECK_THROWS_WITH(lock.release(), Catch::Contains("not locked"));
    CHECK(lock.acquire(false));
    CHECK(lock.locked());
    lock.release();
}

TEST_CASE("Lock works with lock_guard and unique_lock and try_lock", "[locks]") {
    ipc::Lock lock;
    {
        std::lock_guard guard(lock);
        CHECK(lock.locked());
        CHECK_FALSE(lock.try_lock());
    }
    CHECK_FALSE(lock.locked());
    {
        std::unique_lock guard(lock, std::defer_lock);
        CHECK_FALSE(guard.owns_lock());
        CHECK(guard.try_lock_for(10ms));
        CHECK(lock.locked());
        guard.unlock();
        CHECK_FALSE(lock.locked());
        CHECK(guard.try_lock());
        CHECK(lock.locked());
    }
    CHECK_FALSE(lock.locked());
    {
        std::unique_lock guard(lock);
        CHECK(guard.owns_lock());
        std::unique_lock other(lock, std::try_to_lock);
        CHECK_FALSE(other.owns_lock());
    }
    CHECK_FALSE(lock.locked());
    CHECK(lock.try_lock());
    CHECK(lock.locked());
    lock.unlock();
    CHECK_FALSE(lock.locked());
}

TEST_CASE("Lock acquire with a timeout gives up after about the timeout when a child holds it", "[locks]") {
    IPC_EACH_START_METHOD(method);
    ipc::Lock lock;
    ipc::Event held;
    ipc::Event done;
    Process child({.start_method = method}, hold_lock_until, lock, held, done);
    test::Reaper reaper(child);
    child.start();
    REQUIRE(held.wait(test::bound));
    CHECK(lock.locked());
    CHECK_FALSE(lock.try_lock());

    auto start = Clock::now();
    CHECK_FALSE(lock.acquire(200ms));
    const double waited = seconds_since(start);
    CHECK(waited >= 0.19);
    CHECK(waited < 5.0);

    start = Clock::now();
    CHECK_FALSE(lock.acquire(-5s));  // a negative timeout counts as zero
    CHECK_FALSE(lock.try_lock_for(-1ms));
    CHECK(seconds_since(start) < 1.0);

    done.set();
    CHECK(test::join_bounded(child) == 0);
    CHECK_FALSE(lock.locked());
    CHECK(lock.acquire(-5s));  // free: a zero timeout still takes it
    lock.release();
}

TEST_CASE("a Lock acquired in the parent can be released by a child", "[locks]") {
    IPC_EACH_START_METHOD(method);
    ipc::Lock lock;
    REQUIRE(lock.acquire(test::bound));
    CHECK(test::run(method, release_lock, lock) == 0);
    CHECK_FALSE(lock.locked());
    CHECK(lock.acquire(false));
    lock.release();
}

TEST_CASE("a Lock gives mutual exclusion to four processes", "[locks]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    constexpr int processes = 4;
    constexpr int times = 20'000;
    ipc::Lock lock;
    ipc::RawValue<long> counter(0);
    Children children;
    for (int i = 0; i < processes; ++i) children.add(method, increment_under_lock, lock, counter, times);
    children.start_all();
    for (const auto& code : children.join_all()) CHECK(code == 0);
    CHECK(counter.load() == long{processes} * times);
    CHECK_FALSE(lock.locked());
}

// --- RLock -------------------------------------------------------------------------------------

TEST_CASE("RLock is recursive for the thread that holds it", "[locks]") {
    ipc::RLock lock;
    CHECK_FALSE(lock.is_owned());
    CHECK(lock.acquire());
    CHECK(lock.is_owned());
    CHECK(lock.acquire(false));
    CHECK(lock.acquire(10ms));
    {
        std::lock_guard guard(lock);
        CHECK(lock.is_owned());
    }
    lock.release();
    CHECK(lock.is_owned());
    lock.release();
    CHECK(lock.is_owned());
    lock.release();
    CHECK_FALSE(lock.is_owned());
    CHECK_THROWS_AS(lock.release(), ipc::NotOwnedError);  // CPython's tests expect no ValueError here
    CHECK_THROWS_WITH(lock.release(), Catch::Contains("not locked"));

    // Free again: another thread takes it at once.
    auto other = std::async(std::launch::async, [&lock] {
        const bool taken = lock.try_lock();
        if (taken) lock.release();
        return taken;
    });
    REQUIRE(other.wait_for(test::bound) == std::future_status::ready);
    CHECK(other.get());
}

int rlock_locked_here(ipc::RLock lock) { return lock.locked() ? 1 : 0; }

TEST_CASE("RLock locked() says whether any process holds it", "[locks]") {
    IPC_EACH_START_METHOD(method);
    ipc::RLock lock;
    CHECK_FALSE(lock.locked());
    CHECK(test::run(method, rlock_locked_here, lock) == 0);
    REQUIRE(lock.acquire());
    REQUIRE(lock.acquire());
    CHECK(lock.locked());
    CHECK(test::run(method, rlock_locked_here, lock) == 1);
    lock.release();
    CHECK(lock.locked());  // still held once
    lock.release();
    CHECK_FALSE(lock.locked());
    CHECK(test::run(method, rlock_locked_here, lock) == 0);
}

TEST_CASE("RLock release by a thread that does not hold it is a NotOwnedError", "[locks]") {
    ipc::RLock lock;
    REQUIRE(lock.acquire(test::bound));
    auto other = std::async(std::launch::async, [&lock] {
        if (lock.is_owned()) return 1;
        if (lock.try_lock()) return 2;
        if (lock.acquire(20ms)) return 3;
        try {
            lock.release();
        } catch (const ipc::NotOwnedError& error) {
            return std::string(error.what()).find("does not hold") != std::string::npos ? 0 : 4;
        }
        return 5;
    });
    REQUIRE(other.wait_for(test::bound) == std::future_status::ready);
    CHECK(other.get() == 0);
    CHECK(lock.is_owned());
    CHECK_NOTHROW(lock.release());
    CHECK_FALSE(lock.is_owned());
}

TEST_CASE("RLock release in a child while the parent holds it is a NotOwnedError", "[locks]") {
    IPC_EACH_START_METHOD(method);
    ipc::RLock lock;
    REQUIRE(lock.acquire(test::bound));
    REQUIRE(lock.is_owned());
    CHECK(test::run(method, release_rlock_held_by_parent, lock) == 0);
    CHECK(test::run(method, try_lock_rlock, lock) == 0);
    CHECK(lock.is_owned());
    CHECK_NOTHROW(lock.release());
    CHECK_FALSE(lock.is_owned());
    CHECK(test::run(method, try_lock_rlock, lock) == 1);
}

// --- holders that die ---------------------------------------------------------------------------

TEST_CASE("a Lock whose holder was killed raises OwnerDied once and is held while it lives", "[locks]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Lock lock;
    kill_holder(method, hold_lock_forever, lock, [&lock] {
        CHECK(lock.locked());
        CHECK_FALSE(lock.try_lock());
    });

    acquire_expecting_owner_died(lock, [&](ipc::OwnerDied& error) {
        CHECK_THAT(error.what(), Catch::Contains("died"));
        CHECK(lock.locked());
        auto other = std::async(std::launch::async, [&lock] { return lock.try_lock(); });
        REQUIRE(other.wait_for(test::bound) == std::future_status::ready);
        CHECK_FALSE(other.get());
        CHECK(test::run(method, try_lock_lock, lock) == 0);
        CHECK(lock.locked());
    });
    CHECK_FALSE(lock.locked());  // released with the exception

    acquire_cleanly(lock);
    CHECK(lock.locked());
    lock.release();
    CHECK_FALSE(lock.locked());
    CHECK(test::run(method, try_lock_lock, lock) == 1);
}

TEST_CASE("OwnerDied keep leaves a Lock held until release", "[locks]") {
    IPC_EACH_START_METHOD(method);
    ipc::Lock lock;
    kill_holder(method, hold_lock_forever, lock);

    acquire_expecting_owner_died(lock, [](ipc::OwnerDied& error) { error.keep(); });
    CHECK(lock.locked());
    CHECK_FALSE(lock.try_lock());
    CHECK(test::run(method, try_lock_lock, lock) == 0);
    CHECK_NOTHROW(lock.release());
    CHECK_FALSE(lock.locked());
    acquire_cleanly(lock);
    lock.release();
}

TEST_CASE("an RLock whose holder was killed raises OwnerDied once and is held while it lives", "[locks]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::RLock lock;
    CHECK_FALSE(lock.is_owned());
    kill_holder(method, hold_rlock_forever, lock, [&lock] {
        CHECK_FALSE(lock.is_owned());
        CHECK_FALSE(lock.try_lock());
    });

    auto try_in_thread = [&lock] {
        auto other = std::async(std::launch::async, [&lock] {
            const bool taken = lock.try_lock();
            if (taken) lock.release();
            return taken;
        });
        REQUIRE(other.wait_for(test::bound) == std::future_status::ready);
        return other.get();
    };

    acquire_expecting_owner_died(lock, [&](ipc::OwnerDied& error) {
        CHECK_THAT(error.what(), Catch::Contains("died"));
        CHECK(lock.is_owned());
        CHECK_FALSE(try_in_thread());
        CHECK(test::run(method, try_lock_rlock, lock) == 0);
        CHECK(lock.is_owned());
    });
    CHECK_FALSE(lock.is_owned());
    CHECK(try_in_thread());  // released with the exception, depth and all

    acquire_cleanly(lock);
    CHECK(lock.is_owned());
    CHECK_NOTHROW(lock.release());
    CHECK_FALSE(lock.is_owned());
    CHECK(try_in_thread());
}

TEST_CASE("OwnerDied keep leaves an RLock held until release", "[locks]") {
    IPC_EACH_START_METHOD(method);
    ipc::RLock lock;
    CHECK_FALSE(lock.is_owned());
    kill_holder(method, hold_rlock_forever, lock);

    acquire_expecting_owner_died(lock, [](ipc::OwnerDied& error) { error.keep(); });
    CHECK(lock.is_owned());
    CHECK(test::run(method, try_lock_rlock, lock) == 0);
    CHECK_NOTHROW(lock.release());  // depth 1, whatever depth the dead holder had
    CHECK_FALSE(lock.is_owned());
    CHECK(test::run(method, try_lock_rlock, lock) == 1);
}

// --- Semaphore and BoundedSemaphore --------------------------------------------------------------

TEST_CASE("Semaphore counts and acquire without blocking or with a timeout fails at zero", "[locks]") {
    ipc::Semaphore semaphore(2);
    CHECK(semaphore.get_value() == 2);
    CHECK(semaphore.acquire());
    CHECK(semaphore.get_value() == 1);
    CHECK(semaphore.acquire(false));
    CHECK(semaphore.get_value() == 0);
    CHECK_FALSE(semaphore.acquire(false));
    CHECK_FALSE(semaphore.try_lock());

    check_timeouts([&](auto timeout) { return semaphore.acquire(timeout); });
    CHECK(semaphore.get_value() == 0);

    semaphore.release(2);
    CHECK(semaphore.get_value() == 2);
    CHECK(semaphore.acquire(-1s));
    CHECK(semaphore.get_value() == 1);
    semaphore.release();
    CHECK(semaphore.get_value() == 2);
    semaphore.release();  // an unbounded semaphore may go above its initial value
    CHECK(semaphore.get_value() == 3);

    ipc::Semaphore empty(0);
    CHECK(empty.get_value() == 0);
    CHECK_FALSE(empty.acquire(false));
}

TEST_CASE("Semaphore of 2 never admits more than 2 of 6 processes", "[locks]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Semaphore semaphore(2);
    ipc::RawValue<int> active(0);
    ipc::RawValue<int> maximum(0);
    Children children;
    for (int i = 0; i < 6; ++i) children.add(method, count_holders, semaphore, active, maximum, 200);
    children.start_all();
    for (const auto& code : children.join_all()) CHECK(code == 0);
    CHECK(maximum.load() <= 2);
    CHECK(active.load() == 0);
    CHECK(semaphore.get_value() == 2);
}

TEST_CASE("Semaphore of 2 admits 2 processes at once", "[locks]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Semaphore semaphore(2);
    ipc::RawValue<int> inside(0);
    ipc::Event both;
    Children children;
    // Each holds its unit until both are inside: with a semaphore that admitted one, the first
    // would wait in vain and report it.
    for (int i = 0; i < 2; ++i) children.add(method, hold_until_both_inside, semaphore, inside, both);
    children.start_all();
    for (const auto& code : children.join_all()) CHECK(code == 0);
    CHECK(semaphore.get_value() == 2);
}

TEST_CASE("Semaphore release of n wakes n waiting processes", "[locks]") {
    IPC_EACH_START_METHOD(method);
    constexpr int waiters = 3;
    ipc::Semaphore semaphore(0);
    ipc::Semaphore started(0);
    Children children;
    for (int i = 0; i < waiters; ++i) children.add(method, acquire_semaphore, semaphore, started);
    children.start_all();
    for (int i = 0; i < waiters; ++i) REQUIRE(started.acquire(test::bound));
    REQUIRE(test::eventually([&] { return children.all_asleep(); }));  // the wake-up is what is tested
    semaphore.release(waiters);
    for (const auto& code : children.join_all()) CHECK(code == 0);
    CHECK(semaphore.get_value() == 0);
}

TEST_CASE("BoundedSemaphore refuses a release above its initial value and Semaphore allows it", "[locks]") {
    ipc::BoundedSemaphore bounded(2);
    CHECK(bounded.get_value() == 2);
    CHECK_THROWS_AS(bounded.release(), ipc::ValueError);
    CHECK(bounded.get_value() == 2);
    REQUIRE(bounded.acquire(test::bound));
    CHECK(bounded.get_value() == 1);
    CHECK_THROWS_AS(bounded.release(2), ipc::ValueError);
    CHECK(bounded.get_value() == 1);
    CHECK_NOTHROW(bounded.release());
    CHECK(bounded.get_value() == 2);
    CHECK_THROWS_AS(bounded.release(), ipc::ValueError);

    ipc::Semaphore unbounded(2);
    CHECK_NOTHROW(unbounded.release());
    CHECK_NOTHROW(unbounded.release(3));
    CHECK(unbounded.get_value() == 6);
}

namespace {
/// Takes `units` units, says so, and waits to be killed.
void hold_units(ipc::Semaphore semaphore, int units, ipc::Event held) {
    for (int i = 0; i < units; ++i) semaphore.acquire();
    held.set();
    ::pause();
}

/// Says it is about to wait, then waits (bounded) for a unit: 0 when it got one.
int wait_for_unit(ipc::Semaphore semaphore, ipc::Event waiting) {
    waiting.set();
    return semaphore.acquire(test::bound) ? 0 : 1;
}
}  // namespace

TEST_CASE("a Semaphore made to return units gets a killed holder's back, also to a waiter asleep", "[locks]") {
    IPC_EACH_START_METHOD(method);
    const bool bounded = GENERATE(false, true);
    INFO((bounded ? "BoundedSemaphore" : "Semaphore"));
    auto semaphore = bounded ? ipc::BoundedSemaphore(2, ipc::HolderDeath::returns_units)
                             : ipc::Semaphore(2, ipc::HolderDeath::returns_units);
    ipc::Event held, waiting;
    Process holder({.start_method = method}, hold_units, semaphore, 2, held);
    Process waiter({.start_method = method}, wait_for_unit, semaphore, waiting);
    test::Reaper reap_holder(holder), reap_waiter(waiter);
    holder.start();
    REQUIRE(held.wait(test::bound));
    CHECK_FALSE(semaphore.acquire(false));  // its holder lives: nothing comes back
    waiter.start();
    REQUIRE(waiting.wait(test::bound));
    REQUIRE(test::eventually([&] { return test::sleeps_on_futex(*waiter.pid()); }));
    holder.kill();
    REQUIRE(test::join_bounded(holder) == -SIGKILL);
    // Both units come back: one to the waiter that slept, one to us.
    CHECK(test::join_bounded(waiter) == 0);
    CHECK(semaphore.acquire(test::bound));
    CHECK(semaphore.get_value() == 0);
    // The waiter exited holding its unit: that one comes back too.
    CHECK(semaphore.acquire(test::bound));
    semaphore.release(2);
    CHECK(semaphore.get_value() == 2);
    if (bounded) CHECK_THROWS_AS(semaphore.release(), ipc::ValueError);
}

TEST_CASE("by default a Semaphore's units go with a killed holder, as in Python and POSIX", "[locks]") {
    ipc::Semaphore semaphore(1);
    ipc::Event held;
    Process holder({.start_method = StartMethod::fork}, hold_units, semaphore, 1, held);
    test::Reaper reaper(holder);
    holder.start();
    REQUIRE(held.wait(test::bound));
    holder.kill();
    REQUIRE(test::join_bounded(holder) == -SIGKILL);
    CHECK_FALSE(semaphore.acquire(200ms));
}

TEST_CASE("BoundedSemaphore keeps its bound in a child", "[locks]") {
    IPC_EACH_START_METHOD(method);
    ipc::BoundedSemaphore bounded(1);
    CHECK(test::run(method, release_bounded_above, bounded) == 0);
    CHECK(bounded.get_value() == 1);
}

// --- Event -------------------------------------------------------------------------------------

TEST_CASE("Event set clear and wait with a timeout", "[locks]") {
    ipc::Event event;
    CHECK_FALSE(event.is_set());
    check_timeouts([&](auto timeout) { return event.wait(timeout); });

    event.set();
    CHECK(event.is_set());
    CHECK(event.wait(0ms));
    CHECK(event.wait(test::bound));
    event.set();  // setting twice is harmless
    CHECK(event.is_set());
    event.clear();
    CHECK_FALSE(event.is_set());
    CHECK_FALSE(event.wait(10ms));
}

TEST_CASE("Event set wakes every waiting process", "[locks]") {
    IPC_EACH_START_METHOD(method);
    const int waiters = GENERATE(1, 4);
    test::LeakCheck leaks;
    ipc::Event event;
    ipc::Semaphore started(0);
    Children children;
    for (int i = 0; i < waiters; ++i) children.add(method, wait_for_event, event, started);
    children.start_all();
    for (int i = 0; i < waiters; ++i) REQUIRE(started.acquire(test::bound));
    REQUIRE(test::eventually([&] { return children.all_asleep(); }));  // the wake-up is what is tested
    event.set();
    for (const auto& code : children.join_all()) CHECK(code == 0);
    CHECK(event.is_set());
}

// --- named objects -----------------------------------------------------------------------------

TEST_CASE("a named Lock opened by name in children gives mutual exclusion", "[locks]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    const auto name = test::unique_name("lock");
    UnlinkAtEnd cleanup{name};
    {
        constexpr int times = 10'000;
        auto lock = ipc::Lock::create(name);
        CHECK(lock.name() == name);
        CHECK(in_dev_shm(name));
        ipc::RawValue<long> counter(0);
        Children children;
        for (int i = 0; i < 2; ++i) children.add(method, increment_under_named_lock, name, counter, times);
        children.start_all();
        CHECK(increment_under_lock(ipc::Lock::open(name), counter, times) == 0);
        for (const auto& code : children.join_all()) CHECK(code == 0);
        CHECK(counter.load() == 3L * times);
        CHECK_FALSE(lock.locked());
        lock.unlink();
    }
    CHECK_FALSE(in_dev_shm(name));
}

TEST_CASE("named objects report the wrong kind and existing or missing names", "[locks]") {
    const auto name = test::unique_name("lock");
    const auto missing = test::unique_name("missing");
    UnlinkAtEnd cleanup{name};
    {
        auto lock = ipc::Lock::create(name);
        CHECK_THROWS_AS(ipc::Semaphore::open(name), ipc::ValueError);
        CHECK_THROWS_WITH(ipc::Semaphore::open(name), Catch::Contains("Lock") && Catch::Contains("Semaphore"));
        CHECK_THROWS_AS(ipc::RLock::open(name), ipc::ValueError);
        CHECK_THROWS_AS(ipc::Event::open(name), ipc::ValueError);
        CHECK_THROWS_AS(ipc::Lock::create(name), ipc::FileExistsError);
        CHECK_THROWS_AS(ipc::Semaphore::create(name), ipc::FileExistsError);
        CHECK_THROWS_AS(ipc::Lock::open(missing), ipc::FileNotFoundError);
        CHECK_FALSE(in_dev_shm(missing));

        // Opened by name, it is the same lock.
        auto same = ipc::Lock::open(name);
        REQUIRE(lock.acquire(test::bound));
        CHECK(same.locked());
        CHECK_FALSE(same.try_lock());
        same.release();
        CHECK_FALSE(lock.locked());
        auto either = ipc::Lock::open_or_create(name);
        CHECK(either.acquire(false));
        CHECK(lock.locked());
        lock.release();

        lock.unlink();
        CHECK_FALSE(in_dev_shm(name));
        CHECK_THROWS_AS(ipc::Lock::open(name), ipc::FileNotFoundError);
        // The handles still work after the name is gone.
        CHECK(same.acquire(false));
        CHECK(lock.locked());
        lock.release();
    }
    CHECK_FALSE(in_dev_shm(name));
    CHECK_FALSE(in_dev_shm(missing));
}

TEST_CASE("named Semaphore and Event are shared by name", "[locks]") {
    const auto semaphore_name = test::unique_name("semaphore");
    const auto event_name = test::unique_name("event");
    UnlinkAtEnd cleanup_semaphore{semaphore_name};
    UnlinkAtEnd cleanup_event{event_name};
    {
        auto semaphore = ipc::Semaphore::create(semaphore_name, 3);
        auto semaphore_again = ipc::Semaphore::open(semaphore_name);
        CHECK(semaphore_again.get_value() == 3);
        REQUIRE(semaphore_again.acquire(test::bound));
        CHECK(semaphore.get_value() == 2);
        CHECK_THROWS_AS(ipc::BoundedSemaphore::open(semaphore_name), ipc::ValueError);

        auto event = ipc::Event::create(event_name);
        auto event_again = ipc::Event::open(event_name);
        event.set();
        CHECK(event_again.is_set());
        CHECK_THROWS_AS(ipc::Lock::open(event_name), ipc::ValueError);

        semaphore.unlink();
        event.unlink();
        CHECK_THROWS_AS(ipc::Semaphore::open(semaphore_name), ipc::FileNotFoundError);
        CHECK_THROWS_AS(ipc::Event::open(event_name), ipc::FileNotFoundError);
    }
    CHECK_FALSE(in_dev_shm(semaphore_name));
    CHECK_FALSE(in_dev_shm(event_name));
}
