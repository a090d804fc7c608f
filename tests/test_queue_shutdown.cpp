// Queue.shutdown (Python 3.13) under fork and spawn: puts refused, gets draining then refused,
// blocked putters and getters in other processes woken, immediate shutdown dropping what waits (a
// stream under way too) and releasing join(), and event loops told.
#include <boost/asio/io_context.hpp>

#include <exception>
#include <string>
#include <vector>

#include "harness.hpp"
#include "ipc/asio.hpp"
#include "ipc/queues.hpp"
#include "ipc/synchronize.hpp"

using namespace std::chrono_literals;
using ipc::Process;
namespace test = ipc::test;

namespace {

/// Exit codes of a child that reports which error ended its call.
constexpr int ended_by_shut_down = 0, ended_by_timeout = 1, ended_otherwise = 2, returned_normally = 3;

template <class Call>
int how_it_ended(Call call) {
    try {
        call();
        return returned_normally;
    } catch (const ipc::ShutDown&) {
        return ended_by_shut_down;
    } catch (const ipc::Full&) {
        return ended_by_timeout;
    } catch (const ipc::Empty&) {
        return ended_by_timeout;
    } catch (...) {
        return ended_otherwise;
    }
}

/// Takes the `expected` items left in a shut-down queue, in order, then expects ShutDown, even
/// from a get that would block for ever.
int drain_then_shut_down(ipc::Queue<int> queue, int expected) {
    if (!queue.is_shutdown()) return 10;
    for (int i = 0; i < expected; ++i)
        if (queue.get(true, test::bound) != i) return 11;
    return how_it_ended([&] { queue.get(); });
}

int get_blocked(ipc::Queue<int> queue, ipc::Event started) {
    started.set();
    return how_it_ended([&] { queue.get(true, test::bound); });
}

int put_blocked(ipc::Queue<int> queue, ipc::Event started) {
    started.set();
    return how_it_ended([&] { queue.put(2, true, test::bound); });
}

/// Puts a message four times the ring: it streams, and waits for room halfway when nobody reads.
int put_large_blocked(ipc::Queue<std::vector<int>> queue, ipc::Event started) {
    started.set();
    return how_it_ended([&] { queue.put(std::vector<int>(16 << 10, 7), true, test::bound); });
}

/// Starts `target(queue, started)` in a child, waits until it sleeps in its call, shuts the queue
/// down and returns how the child's call ended.
template <class T, class Target>
std::optional<int> shut_down_under_sleeper(ipc::StartMethod method, Target target, ipc::Queue<T>& queue, bool immediate) {
    ipc::Event started;
    Process child({.start_method = method}, target, queue, started);
    test::Reaper reaper(child);
    child.start();
    REQUIRE(started.wait(test::bound));
    REQUIRE(test::eventually([&] { return test::sleeps_on_futex(*child.pid()); }));
    queue.shutdown(immediate);
    return test::join_bounded(child);
}

}  // namespace

TEST_CASE("after shutdown put raises ShutDown and get takes what is left then raises ShutDown", "[queues][shutdown]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Queue<int> queue;
    for (int i = 0; i < 3; ++i) queue.put(i);
    CHECK_FALSE(queue.is_shutdown());
    queue.shutdown();
    CHECK(queue.is_shutdown());
    const auto message = test::error_of<ipc::ShutDown>([&] { queue.put(3); });
    CHECK_THAT(message, Catch::Contains("put on Queue") && Catch::Contains("shut down"));
    CHECK_THROWS_AS(queue.put_nowait(3), ipc::ShutDown);
    CHECK(queue.qsize() == 3);
    CHECK(test::run(method, drain_then_shut_down, queue, 3) == ended_by_shut_down);
    CHECK_THAT(test::error_of<ipc::ShutDown>([&] { queue.get_nowait(); }), Catch::Contains("shut down and empty"));
    queue.shutdown();  // a second time changes nothing
    CHECK_THROWS_AS(queue.get(true, 0ms), ipc::ShutDown);
}

TEST_CASE("shutdown wakes a get that sleeps on the empty queue in another process", "[queues][shutdown]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Queue<int> queue;
    CHECK(shut_down_under_sleeper(method, get_blocked, queue, false) == ended_by_shut_down);
}

TEST_CASE("shutdown wakes a put that sleeps on the full queue in another process", "[queues][shutdown]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Queue<int> queue(1);
    queue.put(1);
    CHECK(shut_down_under_sleeper(method, put_blocked, queue, false) == ended_by_shut_down);
    // The message put before the shutdown is still there, the refused one is not.
    CHECK(queue.get_nowait() == 1);
    CHECK_THROWS_AS(queue.get_nowait(), ipc::ShutDown);
}

TEST_CASE("shutdown with immediate drops what waits and join returns", "[queues][shutdown]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::JoinableQueue<std::string> tasks;
    for (int i = 0; i < 5; ++i) tasks.put(std::string(100 * i, 'x'));
    tasks.get(true, test::bound);  // taken, not done: join still waits for it
    tasks.shutdown(true);
    CHECK(tasks.qsize() == 0);
    CHECK_THROWS_AS(tasks.get_nowait(), ipc::ShutDown);
    CHECK_FALSE(tasks.join(0ms));
    tasks.task_done();
    CHECK(tasks.join(0ms));
    CHECK_THROWS_AS(tasks.task_done(), ipc::ValueError);
}

TEST_CASE("shutdown ends a put asleep halfway through a streamed message and no part of it is taken",
          "[queues][shutdown]") {
    IPC_EACH_START_METHOD(method);
    const bool immediate = GENERATE(false, true);
    INFO("immediate: " << immediate);
    test::LeakCheck leaks;
    ipc::Queue<std::vector<int>> queue(0, 16 << 10);
    // A blocked put raises ShutDown, as Python's does: the sender closes what it began with an abort.
    CHECK(shut_down_under_sleeper(method, put_large_blocked, queue, immediate) == ended_by_shut_down);
    CHECK_THROWS_AS(queue.get(true, test::bound), ipc::ShutDown);
    CHECK(queue.qsize() == 0);
}

TEST_CASE("an event loop waiting on a queue hears of its shutdown", "[queues][shutdown][asio]") {
    test::LeakCheck leaks;
    ipc::Queue<int> queue;
    boost::asio::io_context io;
    std::exception_ptr failure;
    bool called = false;
    ipc::asio::async_get(queue, io, [&](std::exception_ptr error, int) {
        failure = error;
        called = true;
    });
    io.poll();
    CHECK_FALSE(called);
    queue.shutdown();
    io.run_for(test::bound);
    REQUIRE(called);
    REQUIRE(failure);
    CHECK_THROWS_AS(std::rethrow_exception(failure), ipc::ShutDown);
}
