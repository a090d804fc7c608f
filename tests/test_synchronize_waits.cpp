// Condition and Barrier under fork and spawn: misuse, timeouts, notify counts and order, timed-out
// waiters, barrier generations, actions, timeouts, abort and reset.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.hpp"
#include "ipc/detail/segment.hpp"
#include "ipc/process.hpp"
#include "ipc/sharedctypes.hpp"
#include "ipc/synchronize.hpp"
#include "shm/liveness.hpp"
#include "sync/condition_state.hpp"

using namespace std::chrono_literals;
using ipc::Barrier;
using ipc::Condition;
using ipc::Event;
using ipc::Process;
using ipc::StartMethod;
namespace test = ipc::test;

namespace {

using Clock = std::chrono::steady_clock;
using Counter = ipc::RawValue<int>;

/// Children of one scenario: each is killed and reaped if the test ends before it does.
class Children {
public:
    template <class F, class... Args>
    Process& start(StartMethod method, F target, Args... args) {
        auto& process = processes_.emplace_back(ipc::ProcessOptions{.start_method = method}, target, args...);
        reapers_.emplace_back(process);
        process.start();
        return process;
    }
    /// Joins every child within the bound; their exit codes, sorted (-1000 for none).
    std::vector<int> join_all() {
        std::vector<int> codes;
        for (auto& process : processes_) codes.push_back(test::join_bounded(process).value_or(-1000));
        std::sort(codes.begin(), codes.end());
        return codes;
    }

private:
    std::deque<Process> processes_;
    std::deque<test::Reaper> reapers_;  // destroyed first
};

// --- Condition helpers -----------------------------------------------------------------------------

/// Two conditions over one lock: children wait on `cond` and announce progress on `arrived`, so the
/// parent can wait for them without notifying the waiters it counts.
struct ConditionPair {
    Condition cond;
    Condition arrived;
};

ConditionPair conditions_over(bool plain_lock) {
    if (plain_lock) {
        ipc::Lock lock;
        return {Condition(lock), Condition(lock)};
    }
    ipc::RLock lock;
    return {Condition(lock), Condition(lock)};
}

Condition condition_over(bool plain_lock) { return plain_lock ? Condition(ipc::Lock()) : Condition(); }

/// Runs the rest of the test case over a Condition on a Lock and on an RLock (Python's default).
#define IPC_EACH_CONDITION_LOCK(plain_lock)                \
    const bool plain_lock = GENERATE(false, true); \
    INFO("lock: " << (plain_lock ? "Lock" : "RLock"))

/// Announces itself in `waiting`, waits on `cond` up to `timeout_ms` and reports in `woken` when
/// notified. Exit code 0: notified; 2: timed out.
int condition_waiter(Condition cond, Condition arrived, Counter waiting, Counter woken, int timeout_ms) {
    std::unique_lock guard(cond);
    waiting.fetch_add(1);
    arrived.notify_all();
    const bool notified = cond.wait(std::chrono::milliseconds(timeout_ms));
    if (notified) woken.fetch_add(1);
    arrived.notify_all();
    return notified ? 0 : 2;
}

/// As condition_waiter, and records its `id` at its place in the order of wake-ups.
int ordered_waiter(Condition cond, Condition arrived, Counter waiting, ipc::RawArray<int> order, Counter woken, int id) {
    std::unique_lock guard(cond);
    waiting.fetch_add(1);
    arrived.notify_all();
    if (!cond.wait(test::bound)) return 2;
    order[static_cast<std::size_t>(woken.load())] = id;
    woken.fetch_add(1);
    arrived.notify_all();
    return 0;
}

/// Child processes waiting on `cond` (condition_waiter), counted in `waiting` and `woken`, which the
/// parent watches through `arrived` while it holds the lock.
struct ConditionWaiters {
    StartMethod method;
    ConditionPair conditions;
    Condition& cond = conditions.cond;
    Condition& arrived = conditions.arrived;
    Counter waiting, woken;
    Children children;

    ConditionWaiters(StartMethod method_, bool plain_lock) : method(method_), conditions(conditions_over(plain_lock)) {}
    Process& start(int timeout_ms) {
        return children.start(method, condition_waiter, cond, arrived, waiting, woken, timeout_ms);
    }
    /// With the lock held: true once `count` reaches `value` within `limit`.
    bool reaches(Counter& count, int value, std::chrono::milliseconds limit = test::bound) {
        return arrived.wait_for([&] { return count.load() == value; }, limit);
    }
};

/// Holds the condition's lock until `done` is set.
int hold_condition_lock(Condition cond, Event held, Event done) {
    cond.acquire();
    held.set();
    const bool finished = done.wait(test::bound);
    cond.release();
    return finished ? 0 : 3;
}

/// Sets `flag` under the condition's lock and notifies.
int set_flag_and_notify(Condition cond, Counter flag) {
    std::lock_guard guard(cond);
    flag.store(1);
    cond.notify_all();
    return 0;
}

// --- Barrier helpers ---------------------------------------------------------------------------

/// The barrier action reaches its counter through this global; every party sets it before wait().
std::optional<Counter> g_action_runs;

void count_action() { g_action_runs->fetch_add(1); }
void throwing_action() { throw std::runtime_error("barrier action failed"); }

/// Clears the global counter at the end of a test in the parent.
struct ActionCounterScope {
    explicit ActionCounterScope(const Counter& runs) { g_action_runs = runs; }
    ~ActionCounterScope() { g_action_runs.reset(); }
};

constexpr int broken_code = 10;

/// Waits at `barrier` once after the start gate: its index, `broken_code` on BrokenBarrierError,
/// 20 when released before the action ran, 30 on the gate's timeout.
int barrier_party(Barrier barrier, Counter runs, ipc::Semaphore ready, Event go, int timeout_ms) {
    g_action_runs = runs;
    ready.release();
    if (!go.wait(test::bound)) return 30;
    try {
        const unsigned index = barrier.wait(std::chrono::milliseconds(timeout_ms));
        if (runs.load() != 1) return 20;
        return static_cast<int>(index);
    } catch (const ipc::BrokenBarrierError&) {
        return broken_code;
    }
}

/// Waits at `barrier` once: its index or `broken_code`.
int simple_party(Barrier barrier) {
    try {
        return static_cast<int>(barrier.wait(5s));
    } catch (const ipc::BrokenBarrierError&) {
        return broken_code;
    }
}

/// The first wait must be broken by a reset; then one full round: 10 + its index.
int party_through_reset(Barrier barrier, Counter runs) {
    g_action_runs = runs;
    try {
        barrier.wait(5s);
        return 1;
    } catch (const ipc::BrokenBarrierError&) {
    }
    try {
        const unsigned index = barrier.wait(5s);
        if (runs.load() != 1) return 2;
        return 10 + static_cast<int>(index);
    } catch (const ipc::BrokenBarrierError&) {
        return 3;
    }
}

/// 20: the action's own exception arrived here; `broken_code`: the barrier broke; 0: released.
int party_with_throwing_action(Barrier barrier) {
    try {
        barrier.wait(5s);
        return 0;
    } catch (const ipc::BrokenBarrierError&) {
        return broken_code;
    } catch (const ipc::Error&) {
        return 21;
    } catch (const std::runtime_error& error) {
        return std::string(error.what()) == "barrier action failed" ? 20 : 22;
    }
}

constexpr int rounds = 100;

/// Passes the barrier `rounds` times, marking (round, index) in `seen`; checks the action ran once per round.
int looping_party(Barrier barrier, Counter runs, ipc::RawArray<int> seen) {
    g_action_runs = runs;
    try {
        for (int round = 0; round < rounds; ++round) {
            const unsigned index = barrier.wait(5s);
            if (index >= 3) return 2;
            if (runs.load() != round + 1) return 3;
            std::atomic_ref<int>(seen[static_cast<std::size_t>(round * 3 + static_cast<int>(index))]).fetch_add(1);
        }
    } catch (const ipc::BrokenBarrierError&) {
        return broken_code;
    }
    return 0;
}

template <class Duration>
auto elapsed_since(Clock::time_point start) {
    return std::chrono::duration_cast<Duration>(Clock::now() - start);
}

}  // namespace

// --- Condition -----------------------------------------------------------------------------------

TEST_CASE("Condition wait and notify without holding its lock are ipc errors", "[waits]") {
    IPC_EACH_CONDITION_LOCK(plain_lock);
    auto cond = condition_over(plain_lock);
    CHECK_THROWS_AS(cond.wait(10ms), ipc::Error);
    CHECK_THROWS_AS(cond.wait(), ipc::Error);
    CHECK_THROWS_WITH(cond.wait(10ms), Catch::Contains("lock is not held"));
    CHECK_THROWS_AS(cond.wait_for([] { return false; }, 10ms), ipc::Error);
    CHECK_THROWS_AS(cond.notify(), ipc::Error);
    CHECK_THROWS_AS(cond.notify(3), ipc::Error);
    CHECK_THROWS_AS(cond.notify_all(), ipc::Error);
    // Held, the same calls are allowed; released again, they are errors again.
    cond.acquire();
    CHECK_NOTHROW(cond.notify());
    CHECK_NOTHROW(cond.notify_all());
    cond.release();
    CHECK_THROWS_AS(cond.notify(), ipc::Error);
    CHECK_THROWS_AS(cond.wait(10ms), ipc::Error);
}

TEST_CASE("Condition wait and notify are errors while another process holds its lock", "[waits]") {
    IPC_EACH_START_METHOD(method);
    IPC_EACH_CONDITION_LOCK(plain_lock);
    auto cond = condition_over(plain_lock);
    Event held, done;
    // The parent uses the lock first, as a real program would before it forks.
    cond.acquire();
    cond.release();
    Children children;
    children.start(method, hold_condition_lock, cond, held, done);
    REQUIRE(held.wait(test::bound));
    CHECK_FALSE(cond.acquire(false));
    CHECK_THROWS_AS(cond.wait(10ms), ipc::Error);
    CHECK_THROWS_AS(cond.notify(), ipc::Error);
    CHECK_THROWS_AS(cond.notify_all(), ipc::Error);
    done.set();
    CHECK(children.join_all() == std::vector<int>{0});
    CHECK(cond.acquire(false));
    cond.release();
}

TEST_CASE("Condition wait with a timeout returns false after it and holds the lock again", "[waits]") {
    SECTION("over a Lock") {
        ipc::Lock lock;
        Condition cond(lock);
        std::unique_lock guard(cond);
        const auto start = Clock::now();
        CHECK_FALSE(cond.wait(100ms));
        CHECK(elapsed_since<std::chrono::milliseconds>(start) >= 100ms);
        CHECK(lock.locked());
        CHECK_NOTHROW(cond.notify());
        CHECK_FALSE(cond.wait(-1s));  // negative counts as zero
        CHECK(lock.locked());
        guard.unlock();
        CHECK_FALSE(lock.locked());
    }
    SECTION("over an RLock held twice") {
        ipc::RLock lock;
        Condition cond(lock);
        lock.acquire();
        lock.acquire();
        const auto start = Clock::now();
        CHECK_FALSE(cond.wait(100ms));
        CHECK(elapsed_since<std::chrono::milliseconds>(start) >= 100ms);
        CHECK(lock.is_owned());
        CHECK_FALSE(cond.wait(0ms));
        // The recursion depth is restored: two releases, and the third is an error.
        lock.release();
        CHECK(lock.is_owned());
        lock.release();
        CHECK_FALSE(lock.is_owned());
        CHECK_THROWS_AS(lock.release(), ipc::NotOwnedError);
    }
}

TEST_CASE("Condition wait_for returns the predicate's value", "[waits]") {
    IPC_EACH_CONDITION_LOCK(plain_lock);
    auto cond = condition_over(plain_lock);
    std::unique_lock guard(cond);
    int calls = 0;
    auto start = Clock::now();
    CHECK_FALSE(cond.wait_for([&] { return ++calls, false; }, 100ms));
    CHECK(elapsed_since<std::chrono::milliseconds>(start) >= 100ms);
    CHECK(calls >= 2);  // checked before waiting and again after
    start = Clock::now();
    CHECK(cond.wait_for([] { return true; }, 5s));
    CHECK(elapsed_since<std::chrono::milliseconds>(start) < 1s);
    CHECK(cond.wait_for([] { return true; }));
    CHECK_NOTHROW(cond.notify());  // still held
}

TEST_CASE("Condition wait_for returns true when another process makes the predicate true", "[waits]") {
    IPC_EACH_START_METHOD(method);
    IPC_EACH_CONDITION_LOCK(plain_lock);
    auto cond = condition_over(plain_lock);
    Counter flag;
    Children children;
    {
        std::unique_lock guard(cond);
        children.start(method, set_flag_and_notify, cond, flag);
        CHECK(cond.wait_for([&] { return flag.load() == 1; }, test::bound));
        CHECK_NOTHROW(cond.notify());
    }
    CHECK(children.join_all() == std::vector<int>{0});
}

TEST_CASE("Condition notify(1) wakes exactly one of three waiting processes", "[waits]") {
    IPC_EACH_START_METHOD(method);
    IPC_EACH_CONDITION_LOCK(plain_lock);
    test::LeakCheck leaks;
    ConditionWaiters waiters(method, plain_lock);
    for (int i = 0; i < 3; ++i) waiters.start(30'000);
    {
        std::unique_lock guard(waiters.cond);
        REQUIRE(waiters.reaches(waiters.waiting, 3));
        waiters.cond.notify(1);
        REQUIRE(waiters.reaches(waiters.woken, 1));
        // A second wake-up would show within this time; it must not come.
        CHECK_FALSE(waiters.reaches(waiters.woken, 2, 300ms));
        CHECK(waiters.woken.load() == 1);
        waiters.cond.notify_all();
        CHECK(waiters.reaches(waiters.woken, 3));
    }
    CHECK(waiters.children.join_all() == std::vector<int>{0, 0, 0});
}

TEST_CASE("Condition notify_all wakes every waiting process", "[waits]") {
    IPC_EACH_START_METHOD(method);
    IPC_EACH_CONDITION_LOCK(plain_lock);
    ConditionWaiters waiters(method, plain_lock);
    for (int i = 0; i < 3; ++i) waiters.start(30'000);
    {
        std::unique_lock guard(waiters.cond);
        REQUIRE(waiters.reaches(waiters.waiting, 3));
        waiters.cond.notify_all();
        CHECK(waiters.reaches(waiters.woken, 3));
    }
    CHECK(waiters.children.join_all() == std::vector<int>{0, 0, 0});
}

TEST_CASE("Condition notify wakes the longest waiter first", "[waits]") {
    IPC_EACH_START_METHOD(method);
    IPC_EACH_CONDITION_LOCK(plain_lock);
    auto [cond, arrived] = conditions_over(plain_lock);
    Counter waiting, woken;
    ipc::RawArray<int> order(3);
    Children children;
    std::unique_lock guard(cond);
    for (int id = 0; id < 3; ++id) {
        children.start(method, ordered_waiter, cond, arrived, waiting, order, woken, id);
        REQUIRE(arrived.wait_for([&] { return waiting.load() == id + 1; }, test::bound));
    }
    for (int k = 1; k <= 3; ++k) {
        cond.notify(1);
        REQUIRE(arrived.wait_for([&] { return woken.load() == k; }, test::bound));
    }
    guard.unlock();
    CHECK(order.to_vector() == std::vector<int>{0, 1, 2});
    CHECK(children.join_all() == std::vector<int>{0, 0, 0});
}

TEST_CASE("a Condition waiter that timed out never absorbs a later notification", "[waits]") {
    IPC_EACH_START_METHOD(method);
    IPC_EACH_CONDITION_LOCK(plain_lock);
    test::LeakCheck leaks;
    ConditionWaiters waiters(method, plain_lock);
    std::unique_lock guard(waiters.cond);
    // A waits first (the longest waiter) with a short timeout; B waits long.
    Process& a = waiters.start(200);
    REQUIRE(waiters.reaches(waiters.waiting, 1));
    Process& b = waiters.start(5'000);
    REQUIRE(waiters.reaches(waiters.waiting, 2));
    // A's wait ends by its timeout (it then exits) while B still waits.
    guard.unlock();
    CHECK(test::join_bounded(a) == 2);
    guard.lock();
    CHECK(waiters.woken.load() == 0);
    const auto start = Clock::now();
    waiters.cond.notify(1);
    CHECK(waiters.reaches(waiters.woken, 1, 3s));
    guard.unlock();
    CHECK(test::join_bounded(b) == 0);
    CHECK(elapsed_since<std::chrono::milliseconds>(start) < 3s);
}

TEST_CASE("a Condition waiter that was killed takes no notification: the next live waiter does", "[waits]") {
    IPC_EACH_START_METHOD(method);
    IPC_EACH_CONDITION_LOCK(plain_lock);
    test::LeakCheck leaks;
    ConditionWaiters waiters(method, plain_lock);
    std::unique_lock guard(waiters.cond);
    // A waits first, so it is the one notify(1) would choose; then it is killed while it waits.
    Process& a = waiters.start(30'000);
    REQUIRE(waiters.reaches(waiters.waiting, 1));
    Process& b = waiters.start(30'000);
    REQUIRE(waiters.reaches(waiters.waiting, 2));
    a.kill();
    CHECK(test::join_bounded(a) == -SIGKILL);
    waiters.cond.notify(1);
    CHECK(waiters.reaches(waiters.woken, 1));
    guard.unlock();
    CHECK(test::join_bounded(b) == 0);
}

namespace {
/// Takes the condition's lock, notifies one waiter, says so, and waits to be killed holding the lock.
void notify_and_die_holding(Condition cond, Event held) {
    cond.acquire();
    cond.notify(1);
    held.set();
    ::pause();
}

/// Waits on `cond` (holding its lock first, as it must): 3 when the wait ends in OwnerDied, since
/// the process that held the lock when it was notified died holding it.
int wait_through_owner_death(Condition cond, Event waiting) {
    std::unique_lock guard(cond);
    waiting.set();
    try {
        (void)cond.wait(test::bound);
        return 1;
    } catch (const ipc::OwnerDied&) {
        return 3;  // wait() ends holding the lock, as always: the guard releases it
    } catch (const ipc::Error&) {
        return 2;
    }
}
}  // namespace

TEST_CASE("a Condition wait whose lock's holder died after notifying ends in OwnerDied", "[waits]") {
    IPC_EACH_START_METHOD(method);
    IPC_EACH_CONDITION_LOCK(plain_lock);
    auto cond = condition_over(plain_lock);
    Event waiting, held;
    Children children;
    Process& waiter = children.start(method, wait_through_owner_death, cond, waiting);
    REQUIRE(waiting.wait(test::bound));
    REQUIRE(test::eventually([&] { return test::sleeps_on_futex(*waiter.pid()); }));  // in wait(), lock released
    Process& holder = children.start(method, notify_and_die_holding, cond, held);
    REQUIRE(held.wait(test::bound));
    holder.kill();
    CHECK(children.join_all() == std::vector<int>{-SIGKILL, 3});
    // The lock is free again for everyone.
    CHECK(cond.acquire(false));
    cond.release();
}

TEST_CASE("the slots of killed Condition waiters come back to later waiters", "[waits]") {
    Condition cond;
    // Every slot held by a waiter that died (a reaped child's id), as if 1024 waiters were killed.
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    REQUIRE(::waitpid(child, nullptr, 0) == child);
    std::vector<std::byte> saved;
    ipc::codec::Writer writer(saved);
    cond.ipc_save(writer);
    ipc::codec::Reader reader(saved);
    auto segment = ipc::detail::Segment::open_any(reader.read_string());
    auto& state = *segment->at<ipc::detail::ConditionState>();
    for (auto& slot : state.slots) {
        slot.waiter.store(ipc::detail::pack_holder(static_cast<std::uint32_t>(child), 1));
        slot.state.store(ipc::detail::ConditionSlot::waiting);
    }
    state.waiters.store(ipc::detail::ConditionState::slot_count);
    state.slots_used.store(ipc::detail::ConditionState::slot_count);

    std::unique_lock guard(cond);
    bool notified = true;
    CHECK_NOTHROW(notified = cond.wait(10ms));  // it finds a dead waiter's slot, not "too many waiters"
    CHECK_FALSE(notified);
    cond.notify_all();  // frees every other dead waiter's slot instead of notifying it
    std::size_t still_held = 0;
    for (const auto& slot : state.slots) still_held += slot.waiter.load() != 0;
    CHECK(still_held == 0);
    CHECK(state.waiters.load() == 0);
}

// --- Barrier -------------------------------------------------------------------------------------

TEST_CASE("Barrier of 3 with 5 processes releases 3 with distinct indices and breaks for 2 by timeout", "[waits]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    Barrier barrier(3, count_action);
    Counter runs;
    ipc::Semaphore ready(0);
    Event go;
    Children children;
    for (int i = 0; i < 5; ++i) children.start(method, barrier_party, barrier, runs, ready, go, 1500);
    for (int i = 0; i < 5; ++i) REQUIRE(ready.acquire(test::bound));
    go.set();
    CHECK(children.join_all() == std::vector<int>{0, 1, 2, broken_code, broken_code});
    CHECK(runs.load() == 1);
    CHECK(barrier.broken());
    CHECK(barrier.n_waiting() == 0);
}

TEST_CASE("Barrier reports parties and n_waiting and abort breaks it for waiting processes", "[waits]") {
    IPC_EACH_START_METHOD(method);
    Barrier barrier(3);
    CHECK(barrier.parties() == 3);
    CHECK(barrier.n_waiting() == 0);
    CHECK_FALSE(barrier.broken());
    Children children;
    for (int i = 0; i < 2; ++i) children.start(method, simple_party, barrier);
    // Nothing can signal "inside wait()" but the barrier itself.
    REQUIRE(test::eventually([&] { return barrier.n_waiting() == 2; }));
    CHECK_FALSE(barrier.broken());
    barrier.abort();
    CHECK(barrier.broken());
    CHECK(barrier.n_waiting() == 0);
    CHECK(children.join_all() == std::vector<int>{broken_code, broken_code});
    // A broken barrier refuses at once.
    const auto start = Clock::now();
    CHECK_THROWS_AS(barrier.wait(5s), ipc::BrokenBarrierError);
    CHECK_THROWS_AS(barrier.wait(), ipc::BrokenBarrierError);
    CHECK(elapsed_since<std::chrono::milliseconds>(start) < 1s);
    barrier.reset();
    CHECK_FALSE(barrier.broken());
    CHECK(barrier.n_waiting() == 0);
}

TEST_CASE("Barrier reset while processes wait breaks their wait and the barrier is usable again", "[waits]") {
    IPC_EACH_START_METHOD(method);
    Barrier barrier(3, count_action);
    Counter runs;
    ActionCounterScope scope(runs);  // the parent may be the last party and run the action
    Children children;
    for (int i = 0; i < 2; ++i) children.start(method, party_through_reset, barrier, runs);
    REQUIRE(test::eventually([&] { return barrier.n_waiting() == 2; }));
    barrier.reset();
    CHECK_FALSE(barrier.broken());
    std::vector<int> indices;
    CHECK_NOTHROW(indices.push_back(static_cast<int>(barrier.wait(5s))));
    for (int code : children.join_all()) indices.push_back(code - 10);
    std::sort(indices.begin(), indices.end());
    CHECK(indices == std::vector<int>{0, 1, 2});
    CHECK(runs.load() == 1);
    CHECK_FALSE(barrier.broken());
    CHECK(barrier.n_waiting() == 0);
}

TEST_CASE("a Barrier action that throws breaks the barrier and propagates in the party that ran it", "[waits]") {
    IPC_EACH_START_METHOD(method);
    Barrier barrier(3, throwing_action);
    Children children;
    for (int i = 0; i < 3; ++i) children.start(method, party_with_throwing_action, barrier);
    CHECK(children.join_all() == std::vector<int>{broken_code, broken_code, 20});
    CHECK(barrier.broken());
    CHECK_THROWS_AS(barrier.wait(5s), ipc::BrokenBarrierError);
}

TEST_CASE("three processes pass a Barrier of 3 a hundred times with distinct indices in every round", "[waits]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    Barrier barrier(3, count_action);
    Counter runs;
    ipc::RawArray<int> seen(rounds * 3);
    Children children;
    for (int i = 0; i < 3; ++i) children.start(method, looping_party, barrier, runs, seen);
    CHECK(children.join_all() == std::vector<int>{0, 0, 0});
    CHECK(runs.load() == rounds);
    const auto marks = seen.to_vector();
    CHECK(std::count(marks.begin(), marks.end(), 1) == rounds * 3);
    CHECK_FALSE(barrier.broken());
}

TEST_CASE("Barrier checks its parties and breaks by its default timeout", "[waits]") {
    CHECK_THROWS_AS(Barrier(0), ipc::ValueError);

    Counter runs;
    ActionCounterScope scope(runs);
    Barrier single(1, count_action);
    CHECK(single.wait() == 0);
    CHECK(single.wait(1s) == 0);
    CHECK(runs.load() == 2);  // once per generation

    Barrier timed(2, nullptr, 50ms);
    auto start = Clock::now();
    CHECK_THROWS_AS(timed.wait(), ipc::BrokenBarrierError);
    CHECK(elapsed_since<std::chrono::milliseconds>(start) >= 50ms);
    CHECK(timed.broken());
    CHECK(timed.n_waiting() == 0);
    start = Clock::now();
    CHECK_THROWS_AS(timed.wait(5s), ipc::BrokenBarrierError);
    CHECK(elapsed_since<std::chrono::milliseconds>(start) < 1s);
    timed.reset();
    CHECK_FALSE(timed.broken());
    CHECK_THROWS_WITH(timed.wait(20ms), Catch::Contains("timed out"));
    CHECK(timed.broken());
}
