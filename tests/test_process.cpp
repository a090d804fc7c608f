// Process under fork and spawn: exit codes, joins with timeouts, signals, daemons, identity,
// isolation of spawned children, trees of processes, misuse and leaks.
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>
#include <memory>
#include <optional>
#include <utility>
#include <stdexcept>
#include <thread>

#include "harness.hpp"
#include "ipc/pool.hpp"
#include "ipc/process.hpp"
#include "ipc/synchronize.hpp"

using namespace std::chrono_literals;
using ipc::Process;
using ipc::StartMethod;
namespace test = ipc::test;

namespace {

int g_changed_by_parent = 0;

void do_nothing() {}
int return_value(int value) { return value; }
void throw_int() { throw 42; }
void exit_with(int code) { std::exit(code); }
void raise_signal(int signal) { ::raise(signal); }
int read_global() { return g_changed_by_parent; }
void sleep_for_ms(int milliseconds) { std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds)); }

void throw_with_stderr_to(std::string path) {
    // The message about the exception is written after the target returns, to this stderr.
    if (!std::freopen(path.c_str(), "w", stderr)) std::abort();
    throw std::invalid_argument("bad input 7");
}

int sum_tree(int depth, StartMethod method) {
    if (depth == 0) return 1;
    Process left({.start_method = method}, sum_tree, depth - 1, method);
    Process right({.start_method = method}, sum_tree, depth - 1, method);
    left.start();
    right.start();
    left.join();
    right.join();
    return 1 + left.exitcode().value_or(100) + right.exitcode().value_or(100);
}

int check_identity(std::string expected_name, int expected_parent, std::string report) {
    auto parent = ipc::parent_process();
    if (!parent) return 10;
    if (parent->pid() != expected_parent) return 11;
    if (parent->name() != "MainProcess") return 12;
    if (!parent->is_alive()) return 13;
    if (ipc::current_process().name() != expected_name) return 14;
    test::write_file(report, std::to_string(::getpid()));
    return 0;
}

int count_inherited_fds() {
    int extra = 0;
    for (const auto& name : test::directory_entries("/proc/self/fd")) {
        int fd = std::stoi(name);
        if (fd > 2) ++extra;
    }
    return extra - 1;  // the directory listing's own descriptor
}

void start_daemon_and_return(std::string report) {
    Process daemon({.name = "daemon", .daemon = true}, sleep_for_ms, 60'000);
    daemon.start();
    test::write_file(report, std::to_string(*daemon.pid()));
}

/// Starts a worker that finishes once `go` is set, and returns at once (then exits, waiting for it).
void start_worker_and_return(std::string report, ipc::Event go) {
    Process worker({.name = "worker"}, [](std::string path, ipc::Event go_on) {
        if (go_on.wait(test::bound)) test::write_file(path, "done");
    }, report, go);
    worker.start();
}

/// Writes the default names of two children it makes (neither is started).
void name_two_children(std::string report) {
    Process a(do_nothing);
    Process b(do_nothing);
    test::write_file(report, a.name() + " " + b.name());
}

int default_method_in_child() { return static_cast<int>(ipc::get_start_method()); }

/// 0 when this child's key is `expected` and its parent's info reports the same; 1, 2 otherwise.
int check_authkey(std::vector<std::byte> expected) {
    if (ipc::current_process().authkey() != expected) return 1;
    if (!ipc::parent_process() || ipc::parent_process()->authkey() != expected) return 2;
    return 0;
}

/// How many CPUs this child may use after it pins itself to its first one.
int cpus_after_pinning() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    int first = 0;
    while (!CPU_ISSET(first, &set)) ++first;
    CPU_ZERO(&set);
    CPU_SET(first, &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0) return -2;
    return ipc::process_cpu_count() * 100 + (ipc::cpu_count() >= 1 ? 1 : 0);
}

/// Runs `target(path)`, which sends its stderr to the file at `path`: its exit code and that text.
template <class Target>
std::pair<std::optional<int>, std::string> run_with_stderr_to_file(StartMethod method, Target target) {
    test::TempDir dir;
    const auto log = dir.file("stderr");
    const auto code = test::run(method, target, log);
    return {code, test::read_file(log)};
}

int twice(int x) { return 2 * x; }

/// A fork Pool that replaces its workers from its handler thread (one task per worker), with
/// stderr in `path`; 0 when the map came back right.
int pool_with_stderr_to(std::string path) {
    if (!std::freopen(path.c_str(), "w", stderr)) return 10;
    ipc::Pool pool(ipc::PoolOptions{.processes = 2, .maxtasksperchild = 1, .start_method = StartMethod::fork});
    const auto results = pool.map(twice, std::vector<int>{1, 2, 3, 4, 5, 6}, 1);
    pool.close();
    if (!pool.join(std::chrono::seconds(30))) return 11;
    std::fflush(stderr);
    return results == std::vector<int>{2, 4, 6, 8, 10, 12} ? 0 : 12;
}

/// Starts a fork child twice while another thread runs, with stderr in `path`.
int fork_twice_beside_a_thread(std::string path) {
    if (!std::freopen(path.c_str(), "w", stderr)) return 10;
    std::atomic<bool> stop{false};
    std::thread other([&] {
        while (!stop.load()) std::this_thread::yield();
    });
    int failures = 0;
    for (int i = 0; i < 2; ++i) {
        Process child({.start_method = StartMethod::fork}, do_nothing);
        child.start();
        if (test::join_bounded(child) != 0) ++failures;
    }
    stop = true;
    other.join();
    std::fflush(stderr);
    return failures;
}

int view_length(std::string_view text) { return static_cast<int>(text.size()); }

/// Writes to `path` if destroyed in a process other than the one that made it.
struct DestructionWitness {
    std::string path;
    int creator = ::getpid();
    DestructionWitness(std::string p) : path(std::move(p)) {}
    DestructionWitness(const DestructionWitness&) = default;
    DestructionWitness(DestructionWitness&& other) noexcept : path(std::exchange(other.path, {})), creator(other.creator) {}
    ~DestructionWitness() {
        if (!path.empty() && ::getpid() != creator) test::write_file(path, "destroyed in another process");
    }
};

}  // namespace

TEST_CASE("exit code is 0 when the target returns", "[process]") {
    IPC_EACH_START_METHOD(method);
    CHECK(test::run(method, do_nothing) == 0);
}

TEST_CASE("exit code is the target's int result", "[process]") {
    IPC_EACH_START_METHOD(method);
    CHECK(test::run(method, return_value, 7) == 7);
    CHECK(test::run(method, []() { return 3; }) == 3);
}

TEST_CASE("exit code is 1 when the target throws and stderr names the exception", "[process]") {
    IPC_EACH_START_METHOD(method);
    const auto [code, text] = run_with_stderr_to_file(method, throw_with_stderr_to);
    CHECK(code == 1);
    CHECK_THAT(text, Catch::Contains("std::invalid_argument") && Catch::Contains("bad input 7") &&
                         Catch::Contains("Process-"));
    CHECK(test::run(method, throw_int) == 1);
}

TEST_CASE("exit code is the status passed to exit()", "[process]") {
    IPC_EACH_START_METHOD(method);
    CHECK(test::run(method, exit_with, 4) == 4);
}

TEST_CASE("exit code is -N when the child is killed by signal N", "[process]") {
    IPC_EACH_START_METHOD(method);
    CHECK(test::run(method, raise_signal, SIGUSR1) == -SIGUSR1);
    CHECK(test::run(method, raise_signal, SIGABRT) == -SIGABRT);
}

TEST_CASE("join with a timeout returns while the child runs and terminate or kill end it", "[process]") {
    IPC_EACH_START_METHOD(method);
    const int signal = GENERATE(SIGTERM, SIGKILL);
    Process child({.start_method = method}, sleep_for_ms, 60'000);
    test::Reaper reaper(child);
    CHECK_FALSE(child.is_alive());
    CHECK_FALSE(child.pid());
    child.start();
    CHECK(child.pid());
    CHECK_FALSE(child.join(20ms));
    CHECK(child.is_alive());
    CHECK_FALSE(child.exitcode());
    CHECK_FALSE(child.join(-5s));  // a negative timeout counts as zero
    if (signal == SIGTERM)
        child.terminate();
    else
        child.kill();
    CHECK(test::join_bounded(child) == -signal);
    CHECK_FALSE(child.is_alive());
    child.terminate();  // an ended child: nothing to do, as in Python
}

TEST_CASE("a spawned child does not see what the parent changed before start but a forked one does", "[process]") {
    IPC_EACH_START_METHOD(method);
    g_changed_by_parent = 42;
    const auto seen = test::run(method, read_global);
    g_changed_by_parent = 0;
    CHECK(seen == (method == StartMethod::fork ? 42 : 0));
}

TEST_CASE("a spawned or forkserver child inherits no descriptors but its own", "[process]") {
    const auto method = GENERATE(StartMethod::spawn, StartMethod::forkserver);
    INFO("start method: " << ipc::to_string(method));
    int ends[2];
    REQUIRE(::pipe(ends) == 0);  // deliberately without close-on-exec
    const auto inherited = test::run(method, count_inherited_fds);
    ::close(ends[0]);
    ::close(ends[1]);
    CHECK(inherited == 0);
}

TEST_CASE("the child knows its name and pid and its parent", "[process]") {
    IPC_EACH_START_METHOD(method);
    test::TempDir dir;
    const auto report = dir.file("pid");
    Process child({.name = "named-child", .start_method = method}, check_identity, "named-child",
                  static_cast<int>(::getpid()), report);
    CHECK(child.name() == "named-child");
    child.start();
    CHECK(test::join_bounded(child) == 0);
    CHECK(test::read_file(report) == std::to_string(*child.pid()));
    CHECK(ipc::current_process().name() == "MainProcess");
    CHECK(ipc::current_process().pid() == ::getpid());
    CHECK(ipc::current_process().is_alive());
    CHECK_FALSE(ipc::parent_process());
}

TEST_CASE("default names are numbered as in Python", "[process]") {
    IPC_EACH_START_METHOD(method);
    Process first(do_nothing);
    Process second(do_nothing);
    REQUIRE_THAT(first.name(), Catch::StartsWith("Process-"));
    const int number = std::stoi(first.name().substr(std::string("Process-").size()));
    CHECK(second.name() == "Process-" + std::to_string(number + 1));
    // A child numbers its own children under its name: Process-N:1, Process-N:2.
    test::TempDir dir;
    Process parent({.start_method = method}, name_two_children, dir.file("names"));
    parent.start();
    CHECK(test::join_bounded(parent) == 0);
    CHECK(test::read_file(dir.file("names")) == parent.name() + ":1 " + parent.name() + ":2");
}

TEST_CASE("a tree of depth 2 and fan-out 2 completes", "[process]") {
    IPC_EACH_START_METHOD(method);
    CHECK(test::run(method, sum_tree, 2, method) == 7);
}

TEST_CASE("daemon children are terminated when their parent exits normally", "[process]") {
    IPC_EACH_START_METHOD(method);
    test::TempDir dir;
    const auto report = dir.file("daemon-pid");
    CHECK(test::run(method, start_daemon_and_return, report) == 0);
    const pid_t daemon = std::stoi(test::read_file(report));
    CHECK(::kill(daemon, 0) == -1);  // terminated and reaped by its parent before that exited
}

TEST_CASE("a parent waits for its non-daemon children before it exits", "[process]") {
    IPC_EACH_START_METHOD(method);
    test::TempDir dir;
    const auto report = dir.file("worker");
    ipc::Event go;
    Process parent({.start_method = method}, start_worker_and_return, report, go);
    test::Reaper reaper(parent);
    parent.start();
    // Its target returned at once, but its exit waits for the worker, which waits for `go`.
    CHECK_FALSE(parent.join(300ms));
    go.set();
    CHECK(test::join_bounded(parent) == 0);
    CHECK(test::read_file(report) == "done");
}

TEST_CASE("active_children lists running children and reaps ended ones", "[process]") {
    IPC_EACH_START_METHOD(method);
    Process a({.start_method = method}, sleep_for_ms, 60'000);
    Process b({.start_method = method}, sleep_for_ms, 60'000);
    test::Reaper reap_a(a), reap_b(b);
    a.start();
    b.start();
    auto children = ipc::active_children();
    CHECK(children.size() == 2);
    CHECK(std::find(children.begin(), children.end(), a) != children.end());
    a.kill();
    b.kill();
    test::join_bounded(a);
    test::join_bounded(b);
    CHECK(ipc::active_children().empty());
}

TEST_CASE("arguments of every codec family reach the child", "[process][codec]") {
    IPC_EACH_START_METHOD(method);
    struct Point {
        int x;
        double y;
    };
    auto check = [](std::string text, std::vector<int> numbers, std::map<std::string, int> table,
                    std::tuple<int, std::string> pair, std::optional<double> maybe, std::variant<int, std::string> either,
                    Point point, const char* literal_as_string) -> int {
        (void)literal_as_string;
        return text == "hello" && numbers == std::vector<int>{1, 2, 3} && table.at("b") == 2 &&
                       std::get<1>(pair) == "two" && maybe == 2.5 && std::get<std::string>(either) == "right" &&
                       point.x == 4 && point.y == 0.5
                   ? 0
                   : 9;
    };
    // The literal argument is stored as std::string; this target takes const char*, so it stays one
    // and only fork may carry it. The spawn variant below drops it.
    if (method == StartMethod::fork) {
        CHECK(test::run(method, check, "hello", std::vector<int>{1, 2, 3}, std::map<std::string, int>{{"a", 1}, {"b", 2}},
                        std::tuple<int, std::string>{1, "two"}, std::optional<double>(2.5),
                        std::variant<int, std::string>("right"), Point{4, 0.5}, "x") == 0);
    }
    auto spawnable = [](std::string text, std::vector<int> numbers, std::map<std::string, int> table,
                        std::tuple<int, std::string> pair, std::optional<double> maybe,
                        std::variant<int, std::string> either, Point point, std::optional<int> empty) -> int {
        return text == "hello" && numbers == std::vector<int>{1, 2, 3} && table.at("b") == 2 &&
                       std::get<1>(pair) == "two" && maybe == 2.5 && std::get<std::string>(either) == "right" &&
                       point.x == 4 && point.y == 0.5 && !empty
                   ? 0
                   : 9;
    };
    CHECK(test::run(method, spawnable, "hello", std::vector<int>{1, 2, 3}, std::map<std::string, int>{{"a", 1}, {"b", 2}},
                    std::tuple<int, std::string>{1, "two"}, std::optional<double>(2.5),
                    std::variant<int, std::string>("right"), Point{4, 0.5}, std::optional<int>()) == 0);
}

TEST_CASE("a large argument crosses a spawn and a forkserver", "[process][codec]") {
    std::vector<std::uint8_t> big(16 << 20);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 7);
    auto check = [](std::vector<std::uint8_t> data) -> int {
        if (data.size() != (16u << 20)) return 2;
        for (std::size_t i = 0; i < data.size(); ++i)
            if (data[i] != static_cast<std::uint8_t>(i * 7)) return 3;
        return 0;
    };
    CHECK(test::run(StartMethod::spawn, check, big) == 0);
    CHECK(test::run(StartMethod::forkserver, check, big) == 0);
}

TEST_CASE("a target that cannot cross a spawn is an error from start() and works under fork", "[process]") {
    const auto method = GENERATE(StartMethod::spawn, StartMethod::forkserver);
    INFO("start method: " << ipc::to_string(method));
    int captured = 5;
    auto with_capture = [captured]() { return captured; };
    Process spawned({.start_method = method}, with_capture);
    CHECK_THROWS_AS(spawned.start(), ipc::ProcessError);
    CHECK_THROWS_WITH(spawned.start(), Catch::Contains("carries state") && Catch::Contains(std::string(ipc::to_string(method))));
    CHECK(test::run(StartMethod::fork, with_capture) == 5);

    auto takes_pointer = [](std::unique_ptr<int> value) { return *value; };
    Process bad_argument({.start_method = method}, takes_pointer, std::make_unique<int>(6));
    CHECK_THROWS_WITH(bad_argument.start(), Catch::Contains("argument 1") && Catch::Contains("unique_ptr"));
    CHECK(test::run(StartMethod::fork, takes_pointer, std::make_unique<int>(6)) == 6);
}

TEST_CASE("misuse of a Process is an ipc error", "[process]") {
    IPC_EACH_START_METHOD(method);
    Process child({.start_method = method}, sleep_for_ms, 60'000);
    test::Reaper reaper(child);
    CHECK_THROWS_WITH(child.join(), Catch::Contains("not been started"));
    CHECK_THROWS_AS(child.join(1s), ipc::ProcessError);
    CHECK_THROWS_AS(child.terminate(), ipc::ProcessError);
    child.start();
    CHECK_THROWS_WITH(child.start(), Catch::Contains("twice"));
    CHECK_THROWS_AS(child.set_daemon(true), ipc::ProcessError);
    CHECK_THROWS_AS(child.close(), ipc::ValueError);
    CHECK_THROWS_WITH(child.close(), Catch::Contains("still running"));
    child.kill();
    test::join_bounded(child);
    child.close();
    CHECK_THROWS_AS(child.exitcode(), ipc::ValueError);
    CHECK_THROWS_WITH(child.exitcode(), Catch::Contains("closed"));
    CHECK_THROWS_AS(child.sentinel(), ipc::ValueError);
}

TEST_CASE("a sentinel before start is a ValueError", "[process]") {
    Process child(do_nothing);
    CHECK_THROWS_AS(child.sentinel(), ipc::ValueError);
    CHECK_THROWS_WITH(child.sentinel(), Catch::Contains("not been started"));
}

TEST_CASE("interrupt sends SIGINT and the child ends with -SIGINT", "[process]") {
    IPC_EACH_START_METHOD(method);
    Process child({.start_method = method}, sleep_for_ms, 60'000);
    test::Reaper reaper(child);
    child.start();
    child.interrupt();
    CHECK(test::join_bounded(child) == -SIGINT);
    child.interrupt();  // ended already: nothing to do, as terminate() and kill()
}

TEST_CASE("join survives signals that interrupt it", "[process]") {
    IPC_EACH_START_METHOD(method);
    struct sigaction action {};
    action.sa_handler = [](int) {};
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: every blocking call sees EINTR
    struct sigaction previous {};
    REQUIRE(::sigaction(SIGALRM, &action, &previous) == 0);
    itimerval every_ms{{0, 1000}, {0, 1000}};
    REQUIRE(::setitimer(ITIMER_REAL, &every_ms, nullptr) == 0);
    std::optional<int> code;
    CHECK_NOTHROW(code = test::run(method, sleep_for_ms, 200));
    itimerval off{};
    ::setitimer(ITIMER_REAL, &off, nullptr);
    ::sigaction(SIGALRM, &previous, nullptr);
    CHECK(code == 0);
}

TEST_CASE("100 children leave no descriptor and no zombie behind", "[process][leaks]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    for (int i = 0; i < 100; ++i) REQUIRE(test::run(method, return_value, i % 50) == i % 50);
}

TEST_CASE("start methods have names and a default that spawned children inherit", "[process]") {
    CHECK(ipc::get_all_start_methods() == std::vector<std::string>{"fork", "spawn", "forkserver"});
    CHECK(ipc::parse_start_method("spawn") == StartMethod::spawn);
    CHECK(ipc::parse_start_method("forkserver") == StartMethod::forkserver);
    CHECK_THROWS_WITH(ipc::parse_start_method("vfork"), Catch::Contains("vfork") && Catch::Contains("forkserver"));
    CHECK(ipc::get_start_method() == StartMethod::fork);
    ipc::set_start_method("spawn");
    CHECK(ipc::get_start_method() == StartMethod::spawn);
    CHECK_THROWS_WITH(ipc::set_start_method(StartMethod::fork), Catch::Contains("already set"));
    CHECK(test::run(StartMethod::spawn, default_method_in_child) == static_cast<int>(StartMethod::spawn));
    Process uses_default(do_nothing);
    CHECK(uses_default.start_method() == StartMethod::spawn);
    ipc::set_start_method(StartMethod::fork, true);
    CHECK(ipc::get_start_method() == StartMethod::fork);
    CHECK(ipc::cpu_count() >= 1);
}

TEST_CASE("a child's default start method is the one it was started with", "[process]") {
    IPC_EACH_START_METHOD(method);
    CHECK(test::run(method, default_method_in_child) == static_cast<int>(method));
}

TEST_CASE("current_process has a daemon flag and no exit code and children share its authkey", "[process]") {
    IPC_EACH_START_METHOD(method);
    const auto me = ipc::current_process();
    CHECK_FALSE(me.daemon());
    CHECK_FALSE(me.exitcode());
    const auto key = me.authkey();
    struct Restore {
        const ipc::ProcessInfo& me;
        std::vector<std::byte> key;
        ~Restore() { me.set_authkey(key); }  // the next start method's section finds the key made at first
    } restore{me, key};
    CHECK(key.size() == 32);
    CHECK(ipc::current_process().authkey() == key);  // made once
    CHECK(test::run(method, check_authkey, key) == 0);

    const std::vector<std::byte> chosen{std::byte{1}, std::byte{2}, std::byte{3}};
    me.set_authkey(chosen);
    CHECK(test::run(method, check_authkey, chosen) == 0);
    CHECK_THROWS_AS(me.set_authkey({}), ipc::ValueError);
    CHECK_THROWS_AS(ipc::ProcessInfo("other", 1).set_authkey(chosen), ipc::ValueError);
    CHECK_THROWS_AS(ipc::ProcessInfo("other", 1).authkey(), ipc::ValueError);
}

TEST_CASE("process_cpu_count follows the affinity and cpu_count counts the system", "[process]") {
    IPC_EACH_START_METHOD(method);
    CHECK(ipc::process_cpu_count() >= 1);
    CHECK(ipc::process_cpu_count() <= ipc::cpu_count());
    CHECK(test::run(method, cpus_after_pinning) == 101);
}

TEST_CASE("starting a fork child beside another thread warns once on stderr", "[process]") {
    IPC_EACH_START_METHOD(method);
    const auto [code, text] = run_with_stderr_to_file(method, fork_twice_beside_a_thread);
    CHECK(code == 0);
    INFO(text);
    CHECK(text.find(" threads and starts") != std::string::npos);  // 2 here, more under a sanitizer's own threads
    CHECK(text.find("forkserver") != std::string::npos);
    const auto first = text.find("ipc: warning");
    REQUIRE(first != std::string::npos);
    CHECK(text.find("ipc: warning", first + 1) == std::string::npos);
}

TEST_CASE("a Pool forking its workers does not warn about its own threads", "[process]") {
    IPC_EACH_START_METHOD(method);
    const auto [code, text] = run_with_stderr_to_file(method, pool_with_stderr_to);
    CHECK(code == 0);
    CHECK(text.empty());
}

TEST_CASE("a string_view argument arrives as a string", "[process]") {
    IPC_EACH_START_METHOD(method);
    std::string text = "seven c";
    CHECK(test::run(method, view_length, std::string_view(text)) == 7);
}

TEST_CASE("a status collected outside ipc ends the child as 255 and later starts still work", "[process]") {
    // Not forkserver: its children are the server's, whose status nobody else can collect.
    const auto method = GENERATE(StartMethod::fork, StartMethod::spawn);
    INFO("start method: " << ipc::to_string(method));
    Process child({.start_method = method}, return_value, 3);
    child.start();
    int status = 0;
    REQUIRE(::waitpid(*child.pid(), &status, 0) == *child.pid());
    CHECK(test::join_bounded(child) == 255);
    CHECK(test::run(method, return_value, 4) == 4);
}

TEST_CASE("a forked child does not destroy the arguments of its siblings", "[process]") {
    test::TempDir dir;
    const auto report = dir.file("witness");
    {
        Process sibling({.start_method = StartMethod::fork}, [](DestructionWitness) { ::pause(); }, DestructionWitness(report));
        sibling.start();
    }  // only the registry still holds the sibling now
    CHECK(test::run(StartMethod::fork, do_nothing) == 0);
    for (auto& child : ipc::active_children()) {
        child.kill();
        test::join_bounded(child);
    }
    CHECK(test::read_file(report).empty());
}

TEST_CASE("the sentinel stays valid after join", "[process]") {
    IPC_EACH_START_METHOD(method);
    Process child({.start_method = method}, do_nothing);
    child.start();
    const int sentinel = child.sentinel();
    REQUIRE(sentinel >= 0);
    test::join_bounded(child);
    CHECK(child.sentinel() == sentinel);
    pollfd entry{sentinel, POLLIN, 0};
    CHECK(::poll(&entry, 1, 0) == 1);
}
