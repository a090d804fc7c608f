// BaseManager: registered types served by a manager process, by this process (get_server) or over
// TCP to a client that connect()s; typed and by-name proxy calls; errors crossing as their own
// types; proxies in children under every start method; a killed server; hostile and keyless clients.
#include <csignal>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "ipc/listener.hpp"
#include "ipc/managers.hpp"

using ipc::Process;
using ipc::StartMethod;
namespace test = ipc::test;

namespace {

/// A served object with state, a method that throws, and one that hands out another object.
class Counter {
public:
    Counter() = default;
    explicit Counter(int start) : value_(start) {}
    /// A read, a yield and a write: two calls at once would lose an update, unless the server
    /// runs one call at a time on an object, as it does for a type not registered concurrent().
    int add(int amount) {
        const int before = value_;
        std::this_thread::yield();
        value_ = before + amount;
        return value_;
    }
    [[nodiscard]] int value() const { return value_; }
    [[nodiscard]] long echo(long x) const { return x; }
    template <class T>
    [[nodiscard]] T as() const {
        return static_cast<T>(value_) / 2;
    }
    void fail(std::string why) const { throw std::out_of_range(why); }
    void reject() const { throw ipc::ValueError("rejected by the counter"); }
    std::shared_ptr<Counter> spawn_child(int start) const { return std::make_shared<Counter>(start + value_); }
    [[nodiscard]] std::shared_ptr<Counter> nothing() const { return nullptr; }

private:
    int value_ = 0;
};

/// A thread-safe queue whose get() blocks, as Python's queue.Queue served by a remote manager.
class JobQueue {
public:
    void put(int job) {
        {
            std::lock_guard lock(mutex_);
            jobs_.push_back(job);
        }
        ready_.notify_one();
    }
    int get() {
        std::unique_lock lock(mutex_);
        if (!ready_.wait_for(lock, test::bound, [&] { return !jobs_.empty(); })) throw ipc::TimeoutError("JobQueue.get: empty");
        const int job = jobs_.front();
        jobs_.pop_front();
        return job;
    }
    [[nodiscard]] std::size_t qsize() const {
        std::lock_guard lock(mutex_);
        return jobs_.size();
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<int> jobs_;
};

JobQueue& shared_jobs() {
    static JobQueue jobs;
    return jobs;
}

void register_types(ipc::BaseManager& manager) {
    manager.register_type<Counter, int>("Counter")
        .method<&Counter::add>("add")
        .method<&Counter::value>("value")
        .method<&Counter::echo>("echo")
        .method<&Counter::as<int>>("half")
        .method<&Counter::as<double>>("exact_half")
        .method<&Counter::fail>("fail")
        .method<&Counter::reject>("reject")
        .method<&Counter::spawn_child>("spawn_child")
        .method<&Counter::nothing>("nothing");
    manager.register_type<JobQueue>("get_jobs", [] { return &shared_jobs(); })
        .concurrent()
        .method<&JobQueue::put>("put")
        .method<&JobQueue::get>("get")
        .method<&JobQueue::qsize>("qsize");
}

ipc::BaseManager started_manager(std::optional<StartMethod> method = {}) {
    ipc::BaseManager manager(ipc::BaseManagerOptions{.start_method = method});
    register_types(manager);
    manager.start();
    return manager;
}

/// Adds `times`, and checks that each call's reply is its own (an echo of a number no other
/// process sends): replies that went to another process would show here.
int add_from_child(ipc::Proxy<Counter> counter, int times, int child) {
    for (int i = 0; i < times; ++i) {
        const long mine = child * 1000000L + i;
        if (counter.call<&Counter::echo>(mine) != mine) return 1;
        counter.call<&Counter::add>(1);
    }
    return 0;
}

/// A client program's view: it knows only the address and the key.
int consume_jobs(std::string address, std::string key, int count) {
    ipc::BaseManager manager(address, key);
    manager.connect();
    auto jobs = manager.create<JobQueue>("get_jobs");
    int sum = 0;
    for (int i = 0; i < count; ++i) sum += jobs.call<&JobQueue::get>();
    return sum == count * (count + 1) / 2 ? 0 : 1;
}

}  // namespace

TEST_CASE("a BaseManager serves registered types to typed and by-name proxy calls", "[managers][base_manager]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    auto manager = started_manager(method);
    REQUIRE(manager.pid());
    CHECK(*manager.pid() != ::getpid());

    auto counter = manager.create<Counter>("Counter", 10);
    CHECK(counter.type_id() == "Counter");
    CHECK(counter.call<&Counter::add>(5) == 15);
    CHECK(counter.call<&Counter::value>() == 15);
    CHECK(counter.callmethod<int>("add", 1) == 16);
    CHECK(counter.callmethod<int>("value") == 16);
    // Two instances of a member template are two methods.
    CHECK(counter.call<&Counter::as<int>>() == 8);
    CHECK(counter.call<&Counter::as<double>>() == 8.0);
    CHECK(counter.callmethod<double>("exact_half") == 8.0);
    auto other = manager.create<Counter>("Counter", 0);
    CHECK(other.id() != counter.id());
    CHECK(other.call<&Counter::value>() == 0);

    // A method handing out an object: a proxy of a new served Counter (Python's method_to_typeid).
    auto child = counter.call<&Counter::spawn_child>(100);
    CHECK(child.type_id() == "Counter");
    CHECK(child.call<&Counter::value>() == 116);
    CHECK(counter.call<&Counter::value>() == 16);

    // A callable keeping one object: every create() serves the same one.
    auto jobs = manager.create<JobQueue>("get_jobs");
    auto same_jobs = manager.create<JobQueue>("get_jobs");
    CHECK(jobs == same_jobs);
    jobs.call<&JobQueue::put>(7);
    CHECK(same_jobs.call<&JobQueue::qsize>() == 1);
    CHECK(same_jobs.call<&JobQueue::get>() == 7);
    manager.shutdown();
    CHECK_FALSE(manager.pid());
}

TEST_CASE("errors of a BaseManager's calls arrive as their own types and name the problem", "[managers][base_manager]") {
    test::LeakCheck leaks;
    auto manager = started_manager();
    auto counter = manager.create<Counter>("Counter", 1);
    CHECK(test::error_of<std::out_of_range>([&] { counter.call<&Counter::fail>("too far"); }) == "too far");
    CHECK(test::error_of<ipc::ValueError>([&] { counter.call<&Counter::reject>(); }).find("rejected by the counter") !=
          std::string::npos);
    CHECK(test::error_of<ipc::KeyError>([&] { (void)manager.create<Counter>("Nothing"); }).find("no typeid 'Nothing'") !=
          std::string::npos);
    CHECK(test::error_of<ipc::AttributeError>([&] { counter.callmethod("missing"); }).find("exposes no method 'missing'") !=
          std::string::npos);
    // By name, the arguments must have the method's types exactly.
    CHECK(test::error_of<ipc::CodecError>([&] { (void)counter.callmethod<int>("add", 1L); }).find("decode") !=
          std::string::npos);
    // A typeid serving another C++ type than the proxy's.
    CHECK(test::error_of<ipc::CodecError>([&] { (void)manager.create<JobQueue>("Counter", 1); }).find("not a") !=
          std::string::npos);
    CHECK(test::error_of<ipc::ManagerError>([&] { (void)counter.call<&Counter::nothing>(); }).find("empty std::shared_ptr") !=
          std::string::npos);
    // The server is still there after every error.
    CHECK(counter.call<&Counter::add>(1) == 2);
    CHECK_THROWS_AS(manager.register_type<Counter>("Late"), ipc::ValueError);
    {
        ipc::BaseManager other;
        auto registration = other.register_type<Counter, int>("Counter").method<&Counter::add>("add");
        CHECK(test::error_of<ipc::ValueError>([&] { registration.method<&Counter::add>("plus"); }).find("exposed already") !=
              std::string::npos);
        CHECK(test::error_of<ipc::ValueError>([&] { registration.method<&Counter::value>("add"); }).find("exposed twice") !=
              std::string::npos);
        CHECK_THROWS_AS(other.register_type<Counter>("Counter"), ipc::ValueError);
    }
    CHECK_THROWS_AS(manager.start(), ipc::ProcessError);
    // A moved manager keeps its process; the moved-from one has none and refuses.
    auto moved = std::move(manager);
    CHECK(moved.pid());
    CHECK(counter.call<&Counter::add>(1) == 3);
    CHECK_THROWS_AS((void)manager.create<Counter>("Counter", 1), ipc::ManagerError);  // NOLINT: used after move on purpose
}

TEST_CASE("proxies passed to children reach the same served object and lose no call", "[managers][base_manager]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    auto manager = started_manager(method);
    auto counter = manager.create<Counter>("Counter", 0);
    std::vector<Process> children;
    for (int child = 0; child < 4; ++child)
        children.emplace_back(ipc::ProcessOptions{.start_method = method}, add_from_child, counter, 300, child);
    for (auto& child : children) child.start();
    for (auto& child : children) CHECK(test::join_bounded(child) == 0);
    CHECK(counter.call<&Counter::value>() == 1200);
}

TEST_CASE("a server in this process serves clients over TCP that know the key and refuses others", "[managers][base_manager]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::BaseManager manager(ipc::TcpAddress{"127.0.0.1", 0}, "abracadabra");
    register_types(manager);
    auto server = manager.get_server();
    CHECK(server.address().rfind("tcp://127.0.0.1:", 0) == 0);
    CHECK(manager.address() == server.address());
    std::thread serving([&] { server.serve_forever(); });
    const auto address = server.address();

    auto jobs = manager.create<JobQueue>("get_jobs");
    Process consumer(ipc::ProcessOptions{.start_method = method}, consume_jobs, address, std::string("abracadabra"), 20);
    consumer.start();
    for (int job = 1; job <= 20; ++job) jobs.call<&JobQueue::put>(job);
    CHECK(test::join_bounded(consumer) == 0);

    CHECK_THROWS_AS(ipc::BaseManager(address, "wrong key").connect(), ipc::AuthenticationError);
    // The server still serves after the refused client.
    CHECK(jobs.call<&JobQueue::qsize>() == 0);

    ipc::BaseManager client(address, "abracadabra");
    client.connect();
    client.shutdown();  // asks the server to stop: serve_forever returns
    serving.join();
}

TEST_CASE("a client that knows the key but sends garbage gets error replies and the server goes on", "[managers][base_manager]") {
    test::LeakCheck leaks;
    ipc::BaseManager manager(ipc::TcpAddress{"127.0.0.1", 0}, "key");
    register_types(manager);
    manager.start();
    auto counter = manager.create<Counter>("Counter", 3);
    {
        auto raw = ipc::Client(manager.address(), ipc::ClientOptions{.authkey = "key"});
        const std::vector<std::vector<std::byte>> garbage = {
            {},
            {std::byte{9}},
            {std::byte{2}, std::byte{1}},
            std::vector<std::byte>(40, std::byte{0xff}),
            std::vector<std::byte>(17, std::byte{2}),
        };
        for (const auto& request : garbage) {
            raw.send_bytes(request);
            REQUIRE(raw.poll(test::bound));
            const auto reply = raw.recv_bytes();
            REQUIRE(!reply.empty());
            CHECK(reply[0] == std::byte{3});  // an error reply
        }
    }
    CHECK(counter.call<&Counter::add>(1) == 4);
}

TEST_CASE("proxies of a killed manager process fail with ManagerError instead of hanging", "[managers][base_manager]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    auto manager = started_manager(method);
    auto counter = manager.create<Counter>("Counter", 0);
    auto jobs = manager.create<JobQueue>("get_jobs");
    CHECK(counter.call<&Counter::add>(1) == 1);
    // One call waits in the server (an empty queue's get) when the manager is killed.
    std::string waiting_error;
    std::thread waiting([&] { waiting_error = test::error_of<ipc::ManagerError>([&] { (void)jobs.call<&JobQueue::get>(); }); });
    CHECK(test::eventually([&] { return counter.call<&Counter::value>() == 1; }));
    const auto killed = *manager.pid();
    ::kill(killed, SIGKILL);
    waiting.join();
    CHECK(waiting_error.find("is gone") != std::string::npos);
    CHECK(test::error_of<ipc::ManagerError>([&] { (void)counter.call<&Counter::value>(); }).find("is gone") != std::string::npos);
    manager.shutdown();
    // The resource tracker removes the connections' rings the killed server made.
    const auto made_by_killed = "ipc_" + std::to_string(killed) + "_";
    CHECK(test::eventually([&] {
        for (const auto& name : test::directory_entries("/dev/shm"))
            if (name.starts_with(made_by_killed)) return false;
        return true;
    }));
}
