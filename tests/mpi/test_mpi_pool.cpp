// ipc::mpi::Pool: every Pool method, errors coming home, initializer, maxtasksperchild, terminate,
// pools one after another, and a task using a local ipc::Pool on its rank. Each case untagged by
// launch runs three ways (ctest): on the worker ranks of `mpirun --oversubscribe -np 3`, and with
// spawned workers both without mpirun and under `mpirun -np 1`. [ranks] cases need the first way,
// [spawned] ones the others.
#define CATCH_CONFIG_RUNNER
#define CATCH_CONFIG_NO_POSIX_SIGNALS
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <numeric>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "ipc/mpi.hpp"
#include "ipc/pool.hpp"

using namespace std::chrono_literals;

namespace {

constexpr auto bound = std::chrono::seconds(60);

int square(int x) { return x * x; }
int add(int x, int y) { return x + y; }
int my_pid(int) { return static_cast<int>(::getpid()); }
int fail_at_seven(int x) {
    if (x == 7) throw std::invalid_argument("seven is not allowed");
    return x;
}
std::string greet(const std::string& name) { return "hello " + name + " from rank " + std::to_string(ipc::mpi::rank()); }

int g_offset = 0;
void set_offset(int offset) { g_offset = offset; }
int plus_offset(int x) { return x + g_offset; }
void fail_to_start() { throw std::runtime_error("no licence on this node"); }

int sleep_then(int x) {
    std::this_thread::sleep_for(200ms);
    return x;
}

/// A worker rank's task that uses the cores of its own machine through a local Pool.
long sum_of_squares_here(int n) {
    ipc::Pool local(2);
    std::vector<int> inputs(static_cast<std::size_t>(n));
    std::iota(inputs.begin(), inputs.end(), 0);
    const auto squares = local.map(&square, inputs);
    local.close();
    local.join();
    return std::accumulate(squares.begin(), squares.end(), 0L);
}

std::vector<int> numbers(int n) {
    std::vector<int> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), 0);
    return v;
}

std::vector<int> squares(int n) {
    auto v = numbers(n);
    for (auto& x : v) x *= x;
    return v;
}

}  // namespace

TEST_CASE("map, starmap and apply run on the workers", "[mpi]") {
    ipc::mpi::Pool pool(2);
    CHECK(pool.processes() == 2);
    CHECK(pool.map(&square, numbers(100)) == squares(100));
    CHECK(pool.map(&square, numbers(100), 1) == squares(100));
    CHECK(pool.map(&square, numbers(1000), 7) == squares(1000));
    CHECK(pool.map(&square, std::vector<int>{}).empty());
    const std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
    CHECK(pool.starmap(&add, pairs) == std::vector<int>{3, 7, 11});
    CHECK(pool.apply(&add, std::tuple{20, 22}) == 42);
    CHECK(pool.apply(&greet, std::tuple{"ipc"}).starts_with("hello ipc from rank "));
    const auto pids = pool.map(&my_pid, numbers(200), 1);
    const std::set<int> seen(pids.begin(), pids.end());
    CHECK(seen.size() == 2);  // both workers, never this process
    CHECK_FALSE(seen.contains(static_cast<int>(::getpid())));
    pool.close();
    CHECK(pool.join(bound));
}

TEST_CASE("async calls, callbacks and imap work as with a local Pool", "[mpi]") {
    ipc::mpi::Pool pool(2);
    std::vector<int> called;
    auto all = pool.map_async(&square, numbers(50), 3, [&](const std::vector<int>& values) { called = values; });
    CHECK(all.get(bound) == squares(50));
    CHECK(called == squares(50));
    int applied = 0;
    auto one = pool.apply_async(&add, std::tuple{1, 2}, [&](int value) { applied = value; });
    CHECK(one.get(bound) == 3);
    CHECK(one.successful());
    CHECK(applied == 3);

    std::vector<int> ordered;
    for (int value : pool.imap(&square, numbers(40), 3)) ordered.push_back(value);
    CHECK(ordered == squares(40));
    std::vector<int> unordered;
    for (int value : pool.imap_unordered(&square, numbers(40))) unordered.push_back(value);
    std::sort(unordered.begin(), unordered.end());
    CHECK(unordered == squares(40));
    // A view is read while the ranks compute.
    std::vector<int> from_view;
    for (int value : pool.imap(&square, std::views::iota(0, 30) | std::views::transform([](int x) { return x; }), 4))
        from_view.push_back(value);
    CHECK(from_view == squares(30));
    pool.close();
    CHECK(pool.join(bound));
}

TEST_CASE("an exception in a task on a worker rank comes home with its type and message", "[mpi]") {
    ipc::mpi::Pool pool(2);
    CHECK_THROWS_AS(pool.map(&fail_at_seven, numbers(20), 3), std::invalid_argument);
    CHECK_THROWS_WITH(pool.map_async(&fail_at_seven, numbers(20), 1).get(bound), "seven is not allowed");
    std::string error;
    auto failed = pool.apply_async(&fail_at_seven, std::tuple{7}, {}, [&](std::exception_ptr e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            error = x.what();
        }
    });
    CHECK(failed.wait(bound));
    CHECK_FALSE(failed.successful());
    CHECK(error == "seven is not allowed");
    // The pool goes on.
    CHECK(pool.map(&square, numbers(10)) == squares(10));
    pool.close();
    CHECK(pool.join(bound));
}

TEST_CASE("the initializer runs on every worker rank, and its failure fails the pool's work", "[mpi]") {
    {
        ipc::mpi::Pool pool({.processes = 2}, &set_offset, std::tuple{1000});
        CHECK(pool.map(&plus_offset, numbers(20), 1) == [] {
            auto v = numbers(20);
            for (auto& x : v) x += 1000;
            return v;
        }());
        pool.close();
        CHECK(pool.join(bound));
    }
    ipc::mpi::Pool failing({.processes = 2}, &fail_to_start);
    CHECK_THROWS_WITH(failing.map(&square, numbers(4)), Catch::Contains("no licence on this node") &&
                                                             Catch::Contains("MPI rank"));
    failing.terminate();
}

TEST_CASE("maxtasksperchild runs the initializer again after that many tasks", "[mpi]") {
    ipc::mpi::Pool pool({.processes = 1, .maxtasksperchild = 3}, &set_offset, std::tuple{5});
    CHECK(pool.map(&plus_offset, numbers(10), 1) == std::vector<int>{5, 6, 7, 8, 9, 10, 11, 12, 13, 14});
    pool.close();
    CHECK(pool.join(bound));
}

TEST_CASE("terminate fails unfinished work at once and the next pool gets the ranks", "[mpi]") {
    {
        ipc::mpi::Pool pool(2);
        auto slow = pool.map_async(&sleep_then, numbers(20), 1);
        pool.terminate();
        CHECK_THROWS_AS(slow.get(bound), ipc::ProcessError);
        CHECK(pool.join(bound));
    }
    ipc::mpi::Pool next(2);
    CHECK(next.map(&square, numbers(30), 1) == squares(30));  // no stale result of the one before
    next.close();
    CHECK(next.join(bound));
}

TEST_CASE("wrong uses of mpi::Pool on the ranks of a job are clear errors", "[mpi][ranks]") {
    REQUIRE(ipc::mpi::launched());
    REQUIRE(ipc::mpi::size() == 3);
    CHECK(ipc::mpi::Pool().processes() == 2);  // every rank but this one
    CHECK_THROWS_WITH(ipc::mpi::Pool(5), Catch::Contains("5 processes asked") && Catch::Contains("2 worker ranks"));
    CHECK_THROWS_AS(ipc::mpi::Pool(0), ipc::ValueError);
    ipc::mpi::Pool first(1);
    CHECK_THROWS_WITH(ipc::mpi::Pool(1), Catch::Contains("another mpi::Pool"));
    first.close();
    CHECK_THROWS_AS(first.map(&square, numbers(3)), ipc::ValueError);
    CHECK(first.join(bound));
}

TEST_CASE("without worker ranks a pool spawns its own, and several may live at once", "[mpi][spawned]") {
    CHECK(ipc::mpi::size() <= 1);
    CHECK_THROWS_AS(ipc::mpi::Pool(0), ipc::ValueError);
    ipc::mpi::Pool three(3);
    ipc::mpi::Pool one(1);
    CHECK(three.map(&square, numbers(30), 1) == squares(30));
    CHECK(one.map(&square, numbers(30), 1) == squares(30));
    const auto pids = three.map(&my_pid, numbers(90), 1);
    CHECK(std::set<int>(pids.begin(), pids.end()).size() == 3);
    three.close();
    one.close();
    CHECK(three.join(bound));
    CHECK(one.join(bound));
}

TEST_CASE("a task on a worker rank uses a local Pool on its own machine", "[mpi]") {
    ipc::mpi::Pool pool(2);
    const auto sums = pool.map(&sum_of_squares_here, std::vector<int>{10, 100}, 1);
    CHECK(sums == std::vector<long>{285, 328350});
    pool.close();
    CHECK(pool.join(bound));
}

int main(int argc, char** argv) {
    ipc::init(argc, argv);  // worker ranks serve the pools here and never return
    return Catch::Session().run(argc, argv);
}
