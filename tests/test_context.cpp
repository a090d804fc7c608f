// Contexts (ipc/context.hpp): get_context(method) starts Process and Pool children with that
// method whatever the program's default, and its other factories make the usual objects.
#include <vector>

#include "harness.hpp"
#include "ipc/context.hpp"

using namespace std::chrono_literals;
using ipc::StartMethod;
namespace test = ipc::test;

namespace {

int method_of_this_child() { return static_cast<int>(ipc::get_start_method()); }

int method_of_this_worker(int) { return static_cast<int>(ipc::get_start_method()); }

int put_under_lock(ipc::Queue<int> queue, ipc::Lock lock, ipc::Value<int> value, ipc::Event done) {
    {
        std::lock_guard guard(lock);
        value = value.value() + 1;
    }
    queue.put(41 + value.value());
    done.set();
    return 0;
}

}  // namespace

TEST_CASE("a context's Process and Pool start children with its method", "[context]") {
    IPC_EACH_START_METHOD(method);
    const auto context = ipc::get_context(method);
    CHECK(context.get_start_method() == method);

    auto child = context.Process(method_of_this_child);
    CHECK(child.start_method() == method);
    child.start();
    CHECK(test::join_bounded(child) == static_cast<int>(method));

    auto named = context.Process({.name = "named", .start_method = StartMethod::fork}, method_of_this_child);
    CHECK(named.start_method() == method);  // the context's method wins
    CHECK(named.name() == "named");

    auto pool = context.Pool(1);
    CHECK(pool.map(method_of_this_worker, std::vector<int>{0, 1}) == std::vector<int>(2, static_cast<int>(method)));
    pool.close();
    CHECK(pool.join(test::bound));
}

TEST_CASE("a context makes queues, locks, values and events that cross to its children", "[context]") {
    IPC_EACH_START_METHOD(method);
    const auto context = ipc::get_context(method);
    auto queue = context.Queue<int>();
    auto lock = context.Lock();
    auto value = context.Value<int>(0);
    auto done = context.Event();
    auto child = context.Process(put_under_lock, queue, lock, value, done);
    child.start();
    CHECK(done.wait(test::bound));
    CHECK(queue.get(true, test::bound) == 42);
    CHECK(test::join_bounded(child) == 0);
    auto [reader, writer] = context.Pipe(false);
    writer.send(7);
    CHECK(reader.recv<int>() == 7);
    CHECK(context.Array<int>(3).size() == 3);
    CHECK(context.BoundedSemaphore(2).get_value() == 2);
}

TEST_CASE("get_context takes a method's name and defaults to the program's method", "[context]") {
    CHECK(ipc::get_context("spawn").get_start_method() == StartMethod::spawn);
    CHECK(ipc::get_context("fork").get_start_method() == StartMethod::fork);
    CHECK(ipc::get_context().get_start_method() == ipc::get_start_method());
    CHECK_THROWS_AS(ipc::get_context("threads"), ipc::ValueError);
}
