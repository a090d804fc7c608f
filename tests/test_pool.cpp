// Pool under fork and spawn: the seed program, map/imap/starmap/apply in all their forms, errors
// coming home, workers dying mid-task without a hang, maxtasksperchild, initializer, lifecycle.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <fstream>
#include <numeric>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "harness.hpp"
#include "ipc/pool.hpp"
#include "ipc/sharedctypes.hpp"
#include "ipc/synchronize.hpp"

using namespace std::chrono_literals;
namespace test = ipc::test;

namespace {

int subtract_after_a_second(int x, int y) {
    std::this_thread::sleep_for(1s);  // the seed's work: time.sleep(1)
    return x - y;
}

int square(int x) { return x * x; }
pid_t worker_pid() { return ::getpid(); }
pid_t worker_pid_of(int) { return ::getpid(); }

struct CustomFailure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

int fail_at_seven(int x) {
    if (x == 7) throw std::invalid_argument("seven is not allowed");
    return x;
}
int fail_custom(int) { throw CustomFailure("a custom failure"); }
int fail_with_value_error(int) { throw ipc::ValueError("an ipc error in a worker"); }

/// Kills its own worker when x == victim: a worker dying in the middle of a task.
int die_at(int x, int victim, int how) {
    if (x != victim) return x;
    if (how == 0) ::kill(::getpid(), SIGKILL);
    if (how == 1) ::raise(SIGSEGV);
    ::_exit(3);
}

/// A task that waits for the test's go-ahead: state crosses to workers as a serializable function
/// object holding ipc handles.
struct WaitForGo {
    ipc::Event go;
    int operator()(int x) {
        if (x == 5 && !go.wait(test::bound)) return -1;
        return x;
    }
    void ipc_save(ipc::codec::Writer& writer) const { ipc::codec::save(writer, go); }
    static WaitForGo ipc_load(ipc::codec::Reader& reader) { return {ipc::codec::load<ipc::Event>(reader)}; }
};

/// Counts how often each input ran, in shared memory: exactly-once is checked, not assumed.
struct CountRuns {
    ipc::RawArray<int> runs;
    int victim = -1;
    int operator()(int x) const {
        std::atomic_ref<int>(runs[static_cast<std::size_t>(x)]).fetch_add(1);
        if (x == victim) ::kill(::getpid(), SIGKILL);
        return x * 2;
    }
    void ipc_save(ipc::codec::Writer& writer) const {
        ipc::codec::save(writer, runs);
        ipc::codec::save(writer, victim);
    }
    static CountRuns ipc_load(ipc::codec::Reader& reader) {
        auto runs = ipc::codec::load<ipc::RawArray<int>>(reader);
        return {runs, ipc::codec::load<int>(reader)};
    }
};

int initialized_value = 0;
void remember(int value) { initialized_value = value; }
int read_initialized(int) { return initialized_value; }
void refuse_to_start(std::string why) { throw std::runtime_error(why); }

std::size_t length_of(const std::string& text) { return text.size(); }
void do_nothing(int) {}

std::vector<int> numbers(int count) {
    std::vector<int> values(static_cast<std::size_t>(count));
    std::iota(values.begin(), values.end(), 0);
    return values;
}

ipc::PoolOptions with(ipc::StartMethod method, int processes) {
    return {.processes = processes, .maxtasksperchild = {}, .start_method = method};
}

}  // namespace

TEST_CASE("the seed program: 3 workers compute x - y of 4 pairs in two rounds of a second", "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Pool pool(with(method, 3));
    const std::vector<std::tuple<int, int>> args{{1, 1}, {9, 9}, {4, 4}, {3, 3}};
    const auto started = std::chrono::steady_clock::now();
    const auto outputs = pool.starmap_async(&subtract_after_a_second, args).get(test::bound);
    const auto elapsed = std::chrono::steady_clock::now() - started;
    CHECK(outputs == std::vector<int>{0, 0, 0, 0});
    // Four one-second tasks on three workers need two rounds, not four: they ran in parallel.
    CHECK(elapsed >= 2s);
    CHECK(elapsed < 4s);
}

TEST_CASE("map keeps input order for 10000 tiny tasks at chunksize 1 and automatic", "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Pool pool(with(method, 2));
    const auto inputs = numbers(10'000);
    std::vector<int> expected;
    for (int x : inputs) expected.push_back(x * x);
    CHECK(pool.map_async(&square, inputs, 1).get(test::bound) == expected);
    CHECK(pool.map_async(&square, inputs).get(test::bound) == expected);
    CHECK(pool.map_async([](int x) { return x * x; }, inputs, 7).get(test::bound) == expected);
    CHECK(pool.map(&square, std::vector<int>{}).empty());
    CHECK(pool.map(square, std::vector<int>{2, 3}) == std::vector<int>{4, 9});  // a function's name, as in Python
    // Any input range, and results of another type.
    const auto texts = pool.map([](int x) { return std::to_string(x); }, std::views::iota(0, 5));
    CHECK(texts == std::vector<std::string>{"0", "1", "2", "3", "4"});
}

TEST_CASE("imap hands out results while later ones still compute", "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Pool pool(with(method, 2));
    ipc::Event go;
    auto results = pool.imap(WaitForGo{go}, numbers(8));
    // Inputs 0..4 come back although input 5 waits for `go`, which is only set below.
    for (int expected = 0; expected < 5; ++expected) CHECK(results.next(test::bound) == expected);
    CHECK_THROWS_AS(results.next(50ms), ipc::TimeoutError);
    go.set();
    for (int expected = 5; expected < 8; ++expected) CHECK(results.next(test::bound) == expected);
    CHECK_FALSE(results.next(test::bound).has_value());
}

TEST_CASE("imap_unordered returns every result exactly once", "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Pool pool(with(method, 3));
    std::multiset<int> seen;
    for (int value : pool.imap_unordered(&square, numbers(500), 3)) seen.insert(value);
    std::multiset<int> expected;
    for (int x : numbers(500)) expected.insert(x * x);
    CHECK(seen == expected);
    std::vector<int> ordered;
    for (int value : pool.imap(&square, numbers(100), 4)) ordered.push_back(value);
    CHECK(ordered.size() == 100);
    CHECK(std::is_sorted(ordered.begin(), ordered.end()));
}

TEST_CASE("exceptions come home with their type and message", "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Pool pool(with(method, 2));
    CHECK_THROWS_WITH(pool.map_async(&fail_at_seven, numbers(20), 3).get(test::bound), "seven is not allowed");
    CHECK_THROWS_AS(pool.map(&fail_at_seven, numbers(20)), std::invalid_argument);
    CHECK_THROWS_AS(pool.apply(&fail_with_value_error, std::tuple{1}), ipc::ValueError);
    try {
        pool.apply(&fail_custom, std::tuple{1});
        FAIL("no exception");
    } catch (const ipc::RemoteError& e) {
        CHECK(e.type_name().find("CustomFailure") != std::string::npos);
        CHECK(std::string(e.what()).find("a custom failure") != std::string::npos);
    }

    // imap yields the results before the failing element, then throws, then goes on.
    auto results = pool.imap(&fail_at_seven, numbers(10), 4);
    std::vector<int> before;
    try {
        for (;;) before.push_back(results.next(test::bound).value());
    } catch (const std::invalid_argument&) {
    }
    CHECK(before == std::vector<int>{0, 1, 2, 3, 4, 5, 6});
    CHECK(results.next(test::bound) == 8);

    // The pool still works after all of that.
    CHECK(pool.apply(&square, std::tuple{12}) == 144);
}

TEST_CASE("apply_async: get with a timeout wait ready successful and callbacks", "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Pool pool(with(method, 2));
    ipc::Event go;
    auto waiting = pool.apply_async(WaitForGo{go}, std::tuple{5});
    CHECK_THROWS_AS(waiting.get(50ms), ipc::TimeoutError);
    CHECK_FALSE(waiting.wait(10ms));
    CHECK_FALSE(waiting.ready());
    CHECK_THROWS_AS(waiting.successful(), ipc::ValueError);
    go.set();
    CHECK(waiting.get(test::bound) == 5);
    CHECK(waiting.ready());
    CHECK(waiting.successful());

    std::atomic<int> called{0};
    std::atomic<bool> errored{false};
    auto product = pool.apply_async(
        [](int a, int b) { return a * b; }, std::tuple{6, 7}, [&](const int& value) { called = value; },
        [&](std::exception_ptr) { errored = true; });
    CHECK(product.get(test::bound) == 42);
    CHECK(called == 42);  // callbacks run before get() returns
    CHECK_FALSE(errored);

    auto failing = pool.apply_async(&fail_at_seven, std::tuple{7}, {}, [&](std::exception_ptr) { errored = true; });
    CHECK(failing.wait(test::bound));
    CHECK_FALSE(failing.successful());
    CHECK(errored);

    std::vector<int> mapped;
    auto all = pool.map_async(&square, numbers(5), 2, [&](const std::vector<int>& values) { mapped = values; });
    CHECK(all.get(test::bound) == std::vector<int>{0, 1, 4, 9, 16});
    CHECK(mapped == std::vector<int>{0, 1, 4, 9, 16});

    pool.apply_async(&do_nothing, std::tuple{1}).get(test::bound);  // void: get() returns nothing
    CHECK(pool.map(&do_nothing, numbers(3)).size() == 3);
    CHECK(pool.apply(&worker_pid) != ::getpid());
    CHECK(pool.apply(&length_of, std::tuple{std::string(3 << 20, 'x')}) == std::size_t{3} << 20);  // streams
    CHECK(pool.apply(&length_of, std::tuple{"a literal"}) == 9);
}

TEST_CASE("a worker that dies mid-task fails that task and the pool goes on", "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Pool pool(with(method, 2));
    for (const auto& [how, exitcode] : {std::pair{0, -SIGKILL}, std::pair{1, -SIGSEGV}, std::pair{2, 3}}) {
        INFO("how " << how);
        std::vector<std::tuple<int, int, int>> args;
        for (int x = 0; x < 40; ++x) args.emplace_back(x, 17, how);
        try {
            pool.starmap_async(&die_at, args, 1).get(test::bound);
            FAIL("no exception");
        } catch (const ipc::WorkerDiedError& e) {
            INFO(e.what());
            if (how == 1) {
                CHECK(e.exitcode() != 0);  // SIGSEGV, or exit code 1 where a sanitizer catches it
            } else {
                CHECK(e.exitcode() == exitcode);
                CHECK(std::string(e.what()).find(how == 2 ? "exited with code 3" : "killed by signal 9 (SIGKILL)") !=
                      std::string::npos);
            }
            // The failure is reported once the dead worker's replacement has started.
            CHECK(ipc::active_children().size() == 2);
        }
        // The next map succeeds, on a replaced worker.
        CHECK(pool.map_async(&square, numbers(100), 1).get(test::bound).back() == 99 * 99);
    }
    CHECK(ipc::active_children().size() == 2);  // each dead worker was replaced, none more
}

TEST_CASE("when a worker is killed no other task is lost or run twice", "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Pool pool(with(method, 2));
    ipc::RawArray<int> runs(300);
    const CountRuns count{runs, 123};
    std::vector<ipc::AsyncResult<int>> results;
    for (int x = 0; x < 300; ++x) results.push_back(pool.apply_async(count, std::tuple{x}));
    // The victim's result first: this thread waits, not allocates, while the replacement forks.
    CHECK_THROWS_AS(results[123].get(test::bound), ipc::WorkerDiedError);
    for (int x = 0; x < 300; ++x) {
        INFO("task " << x);
        if (x != 123) CHECK(results[static_cast<std::size_t>(x)].get(test::bound) == 2 * x);
        CHECK(runs[static_cast<std::size_t>(x)] == 1);
    }
}

TEST_CASE("maxtasksperchild replaces a worker after its tasks", "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    {
        ipc::Pool pool({.processes = 1, .maxtasksperchild = 2, .start_method = method});
        std::vector<pid_t> pids;
        for (int i = 0; i < 6; ++i) pids.push_back(pool.apply_async(&worker_pid).get(test::bound));
        CHECK(pids[0] == pids[1]);
        CHECK(pids[2] == pids[3]);
        CHECK(pids[4] == pids[5]);
        CHECK(std::set<pid_t>(pids.begin(), pids.end()).size() == 3);
        // A map larger than one worker's budget is spread over its successors.
        const auto map_pids = pool.map_async(&worker_pid_of, numbers(10), 1).get(test::bound);
        CHECK(std::set<pid_t>(map_pids.begin(), map_pids.end()).size() == 5);
    }
    CHECK_THROWS_AS(ipc::Pool({.processes = 1, .maxtasksperchild = 0}), ipc::ValueError);
}

TEST_CASE("initializer runs in every worker and a failing one fails the work", "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    {
        ipc::Pool pool(with(method, 3), &remember, std::tuple{41});
        const auto values = pool.map_async(&read_initialized, numbers(30), 1).get(test::bound);
        CHECK(values == std::vector<int>(30, 41));
    }
    {
        ipc::Pool pool(with(method, 2), &refuse_to_start, std::tuple{"no database"});
        CHECK_THROWS_WITH(pool.map_async(&square, numbers(10)).get(test::bound),
                          Catch::Contains("initializer") && Catch::Contains("no database"));
        CHECK_THROWS_AS(pool.apply_async(&square, std::tuple{2}).get(test::bound), ipc::ProcessError);
    }
}

TEST_CASE("close then join finishes queued work and later calls are errors", "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    {
        ipc::Pool pool(with(method, 2));
        CHECK_THROWS_AS(pool.join(), ipc::ValueError);  // still running
        auto queued = pool.map_async(&square, numbers(1000), 1);
        pool.close();
        CHECK_THROWS_AS(pool.apply(&square, std::tuple{2}), ipc::ValueError);
        CHECK_THROWS_AS(pool.map(&square, numbers(3)), ipc::ValueError);
        REQUIRE(pool.join(test::bound));
        CHECK(queued.ready());
        CHECK(queued.get().size() == 1000);
    }
    CHECK_THROWS_AS(ipc::Pool(0), ipc::ValueError);
}

TEST_CASE("join with a timeout says whether the workers finished", "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Event go;
    ipc::Pool pool(with(method, 1));
    auto busy = pool.apply_async(WaitForGo{go}, std::tuple{5});
    pool.close();
    CHECK_FALSE(pool.join(50ms));  // the one worker still waits for `go`
    go.set();
    CHECK(pool.join(test::bound));
    CHECK(busy.get(test::bound) == 5);
}

TEST_CASE("a forked child cannot use its parent's Pool and says so", "[pool]") {
    test::LeakCheck leaks;
    ipc::Pool pool(1);
    // Fork only once the pool's threads are idle: a thread that allocates during fork() leaves
    // the sanitizers' allocator locked in the child (glibc's malloc guards against that).
    REQUIRE(pool.apply(&square, std::tuple{1}) == 1);
    ipc::Process child({.start_method = ipc::StartMethod::fork}, [&pool] {
        try {
            pool.apply(&square, std::tuple{2});
        } catch (const ipc::ProcessError& e) {
            return std::string(e.what()).find("only by the process that created it") != std::string::npos ? 0 : 2;
        }
        return 1;
    });
    child.start();
    CHECK(test::join_bounded(child) == 0);
    CHECK(pool.apply(&square, std::tuple{3}) == 9);
}

TEST_CASE("terminate and the destructor stop busy workers and fail what did not finish", "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Event never;
    std::optional<ipc::AsyncResult<int>> stuck;
    {
        ipc::Pool pool(with(method, 2));
        stuck = pool.apply_async(WaitForGo{never}, std::tuple{5});
        auto queued = pool.map_async(WaitForGo{never}, std::vector<int>(10, 5), 1);
        pool.terminate();
        CHECK_THROWS_AS(queued.get(test::bound), ipc::ProcessError);
        REQUIRE(pool.join(test::bound));
    }
    CHECK_THROWS_AS(stuck->get(test::bound), ipc::ProcessError);
    const auto started = std::chrono::steady_clock::now();
    {
        ipc::Pool pool(with(method, 2));
        stuck = pool.apply_async(WaitForGo{never}, std::tuple{5});
    }  // leaving the scope terminates, as leaving Python's `with Pool()` does
    CHECK(std::chrono::steady_clock::now() - started < test::bound);
    CHECK_THROWS_AS(stuck->get(test::bound), ipc::ProcessError);
}

namespace {

/// The children this process started that still run or wait to be reaped.
/// Children other than the forkserver, which stays for the rest of the process once started.
bool has_children() {
    std::ifstream list("/proc/self/task/" + std::to_string(::getpid()) + "/children");
    for (pid_t child = 0; list >> child;)
        if (child != ipc::detail::forkserver_pid()) return true;
    return test::has_zombie_children();
}

bool has_own_segments() {
    const auto prefix = "ipc_" + std::to_string(::getpid()) + "_";
    for (const auto& name : test::directory_entries("/dev/shm"))
        if (name.starts_with(prefix)) return true;
    return false;
}

/// In a process of its own (the descriptor limit is per process): builds a Pool under a limit of
/// descriptors raised one at a time from what is open now, so that construction fails at every
/// step that opens one, until a Pool is built. 0 when every failure left no descriptor, worker or
/// segment behind; otherwise what was left.
int build_pools_short_of_descriptors(ipc::StartMethod method) {
    rlimit original{};
    if (::getrlimit(RLIMIT_NOFILE, &original) != 0) return 10;
    const auto open = test::open_fd_count();
    int failures = 0;
    for (rlim_t extra = 0; extra < 300; ++extra) {
        rlimit limited{open + extra, original.rlim_max};
        if (::setrlimit(RLIMIT_NOFILE, &limited) != 0) return 11;
        bool built = false;
        try {
            ipc::Pool pool(with(method, 2));
            built = pool.apply(&square, std::tuple{3}) == 9;
        } catch (const std::exception&) {
            ++failures;
        }
        ::setrlimit(RLIMIT_NOFILE, &original);
        if (test::open_fd_count() != open) return 1;
        if (has_children()) return 2;
        if (has_own_segments()) return 3;
        if (built) return failures > 3 ? 0 : 12;  // it failed at a few steps before
    }
    return 13;
}

}  // namespace

TEST_CASE("a Pool whose construction runs out of descriptors at any step leaves no worker or descriptor or segment",
          "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    CHECK(test::run(ipc::StartMethod::fork, build_pools_short_of_descriptors, method) == 0);
}

namespace {

struct SayWhenError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// CPython's exception_throwing_generator as a view: 0, 1, 2, … up to `total`, throwing at `when`.
auto throwing_input(int total, int when) {
    return std::views::iota(0, total) | std::views::transform([when](int x) {
               if (x == when) throw SayWhenError("the input failed at " + std::to_string(x));
               return x;
           });
}

}  // namespace

TEST_CASE("imap reads a failing input while computing and yields the results of the chunks before the error",
          "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Pool pool(with(method, 2));
    // CPython's test_imap_handle_iterable_exception: the error comes at the start of the chunk it cut.
    for (const auto& [chunksize, when, before] : {std::tuple{1, 3, 3}, std::tuple{2, 7, 6}, std::tuple{4, 7, 4}}) {
        INFO("chunksize " << chunksize << ", input fails at " << when);
        auto results = pool.imap(&square, throwing_input(20, when), static_cast<std::size_t>(chunksize));
        for (int i = 0; i < before; ++i) CHECK(results.next(test::bound) == i * i);
        CHECK_THROWS_AS(results.next(test::bound), SayWhenError);
        CHECK_FALSE(results.next(test::bound).has_value());
    }
    // imap_unordered: some results, each one expected and once, then the error.
    auto unordered = pool.imap_unordered(&square, throwing_input(10, 3), 1);
    std::multiset<int> expected{0, 1, 4};
    CHECK_THROWS_AS(
        [&] {
            while (auto value = unordered.next(test::bound)) {
                CHECK(expected.count(*value) == 1);
                expected.erase(*value);
            }
        }(),
        SayWhenError);
}

TEST_CASE("imap over an endless input hands out results while it keeps only a few chunks ahead", "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Pool pool(with(method, 2));
    auto results = pool.imap(&square, std::views::iota(0), 3);
    for (int i = 0; i < 1000; ++i) REQUIRE(results.next(test::bound) == i * i);
    pool.terminate();  // the feeder, still reading, stops too
    REQUIRE(pool.join(test::bound));
}

TEST_CASE("a closed pool reads the rest of an imap input before join returns and its results stay", "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Pool pool(with(method, 2));
    auto results = pool.imap_unordered(&square, std::views::iota(0, 300), 1);  // 300 chunks: more than read ahead
    pool.close();
    REQUIRE(pool.join(test::bound));
    std::multiset<int> seen;
    for (int value : results) seen.insert(value);
    CHECK(seen.size() == 300);
    CHECK(seen.count(299 * 299) == 1);
    CHECK_THROWS_AS(pool.imap(&square, std::views::iota(0, 3)), ipc::ValueError);
}

namespace {
void add_at_start(ipc::Value<int> started, int amount) { started.fetch_add(amount); }
int add_and_read(ipc::Value<int> total, int amount) { return total.fetch_add(amount) + amount; }
int sum_pair(std::pair<ipc::RawArray<int>, std::size_t> cells) { return cells.first[cells.second]; }
}  // namespace

TEST_CASE("ipc handles inside an args tuple or initargs reach the workers", "[pool]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Value<int> started(0);
    ipc::Value<int> total(0);
    {
        ipc::Pool pool(with(method, 2), &add_at_start, std::tuple{started, 10});
        CHECK(pool.apply(&add_and_read, std::tuple{total, 5}) == 5);
        const auto sums = pool.starmap(&add_and_read, std::vector{std::tuple{total, 1}, std::tuple{total, 2}});
        CHECK(sums.size() == 2);
        ipc::RawArray<int> cells(std::vector<int>{4, 5, 6});
        CHECK(pool.map(&sum_pair, std::vector{std::pair{cells, std::size_t{2}}}) == std::vector<int>{6});
        pool.close();
        REQUIRE(pool.join(test::bound));
    }
    CHECK(total.load() == 8);
    CHECK(started.load() == 20);  // each of the 2 workers ran the initializer once
}
