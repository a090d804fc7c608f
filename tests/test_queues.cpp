// Queue, SimpleQueue and JoinableQueue under fork and spawn: many producers and consumers with
// exactly-once delivery and per-producer order, timeouts, task accounting, and producers killed mid-put.
#include <signal.h>

#include <atomic>
#include <numeric>

#include "harness.hpp"
#include "ipc/queues.hpp"
#include "ipc/sharedctypes.hpp"
#include "ipc/synchronize.hpp"

using namespace std::chrono_literals;
using ipc::Process;
namespace test = ipc::test;

namespace {

struct Item {
    int producer;  // -1: no more items
    int sequence;
};

constexpr int producers = 4;
constexpr int per_producer = 100'000;

int produce(ipc::Queue<Item> queue, int producer) {
    for (int i = 0; i < per_producer; ++i) queue.put(Item{producer, i});
    return 0;
}

/// Counts every item it takes in `seen`; fails when a producer's items come out of order.
int consume(ipc::Queue<Item> queue, ipc::RawArray<int> seen) {
    int last[producers];
    std::fill(std::begin(last), std::end(last), -1);
    for (;;) {
        const auto item = queue.get(true, test::bound);
        if (item.producer < 0) return 0;
        if (item.producer >= producers || item.sequence <= last[item.producer]) return 1;
        last[item.producer] = item.sequence;
        std::atomic_ref<int>(seen[static_cast<std::size_t>(item.producer * per_producer + item.sequence)]).fetch_add(1);
    }
}

/// Puts messages whose contents check themselves, as fast as it can, until killed.
void put_forever(ipc::Queue<std::vector<int>> queue, ipc::Event started) {
    started.set();
    for (int round = 0;; ++round) {
        const int size = 1 + (round * 7919) % 40'000;  // up to 160 KB: many messages stream in chunks
        std::vector<int> message(static_cast<std::size_t>(size));
        for (int i = 0; i < size; ++i) message[static_cast<std::size_t>(i)] = round ^ i;
        message[0] = round;
        queue.put(message);
    }
}

bool intact(const std::vector<int>& message) {
    if (message.empty()) return false;
    const int round = message[0];
    for (std::size_t i = 1; i < message.size(); ++i)
        if (message[i] != (round ^ static_cast<int>(i))) return false;
    return true;
}

std::vector<int> numbered(int sequence) {
    std::vector<int> message(25'000);  // 100 KB: streams through a 64 KiB ring in chunks
    for (std::size_t i = 0; i < message.size(); ++i) message[i] = sequence ^ static_cast<int>(i);
    message[0] = sequence;
    return message;
}

int put_numbered(ipc::Queue<std::vector<int>> queue, int count) {
    for (int i = 0; i < count; ++i) queue.put(numbered(i));
    queue.put(std::vector<int>{-5});  // the end
    return 0;
}

int take_and_count(ipc::Queue<std::vector<int>> queue, ipc::RawValue<int> taken) {
    for (;;) {
        const auto message = queue.get();
        if (message.size() == 1 && message[0] == -5) return 0;
        if (!intact(message)) return 1;
        taken.fetch_add(1);
    }
}

int put_marked(ipc::Queue<std::vector<int>> queue, int count) {
    for (int i = 0; i < count; ++i) queue.put(std::vector<int>{-1, i});
    return 0;
}

int work_through(ipc::JoinableQueue<int> tasks, ipc::RawValue<int> total) {
    for (;;) {
        const int task = tasks.get(true, test::bound);
        if (task < 0) {
            tasks.task_done();
            return 0;
        }
        total.fetch_add(task);
        tasks.task_done();
    }
}

int simple_echo(ipc::SimpleQueue<std::string> in, ipc::SimpleQueue<std::string> out) {
    for (std::string text; (text = in.get()) != "stop";) out.put(text + "!");
    return 0;
}

}  // namespace

TEST_CASE("4 producers and 2 consumers deliver 400000 items exactly once in per-producer order", "[queues]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Queue<Item> queue(0, 64 << 10);
    ipc::RawArray<int> seen(static_cast<std::size_t>(producers * per_producer));
    std::vector<Process> consumers, makers;
    for (int c = 0; c < 2; ++c) consumers.emplace_back(ipc::ProcessOptions{.start_method = method}, consume, queue, seen);
    for (int p = 0; p < producers; ++p) makers.emplace_back(ipc::ProcessOptions{.start_method = method}, produce, queue, p);
    for (auto& p : consumers) p.start();
    for (auto& p : makers) p.start();
    for (auto& p : makers) CHECK(test::join_bounded(p) == 0);
    queue.put(Item{-1, 0});
    queue.put(Item{-1, 0});
    for (auto& p : consumers) CHECK(test::join_bounded(p) == 0);
    std::size_t wrong = 0;
    for (int count : seen) wrong += count != 1;
    CHECK(wrong == 0);
    CHECK(queue.empty());
}

TEST_CASE("put and get time out with Full and Empty", "[queues]") {
    ipc::Queue<int> queue(2);
    CHECK(queue.empty());
    queue.put(1);
    queue.put_nowait(2);
    CHECK(queue.full());
    CHECK(queue.qsize() == 2);
    CHECK_THROWS_AS(queue.put_nowait(3), ipc::Full);
    const auto start = std::chrono::steady_clock::now();
    CHECK_THROWS_AS(queue.put(3, true, 50ms), ipc::Full);
    CHECK(std::chrono::steady_clock::now() - start >= 45ms);
    CHECK_THROWS_AS(queue.put(3, true, -1s), ipc::Full);  // a negative timeout counts as zero
    CHECK(queue.get() == 1);
    CHECK(queue.get_nowait() == 2);
    CHECK_THROWS_AS(queue.get_nowait(), ipc::Empty);
    CHECK_THROWS_AS(queue.get(true, 20ms), ipc::Empty);
    CHECK_THROWS_AS(queue.get(false, 10s), ipc::Empty);  // not blocking: the timeout is ignored
    queue.close();
    CHECK_THROWS_WITH(queue.get(), Catch::Contains("closed"));
    CHECK(queue.empty());  // as CPython's Queue after close()
    ipc::Queue<int> unused;
    unused.close();
    CHECK(unused.empty());
}

TEST_CASE("a producer killed in the middle of puts leaves the queue whole for everyone else", "[queues]") {
    IPC_EACH_START_METHOD(method);
    ipc::Queue<std::vector<int>> queue(0, 64 << 10);  // messages above 32 KB stream in chunks
    for (int kill_round = 0; kill_round < 3; ++kill_round) {
        ipc::Event started;
        Process producer({.start_method = method}, put_forever, queue, started);
        test::Reaper reaper(producer);
        producer.start();
        REQUIRE(started.wait(test::bound));
        for (int i = 0; i < 5; ++i) CHECK(intact(queue.get(true, test::bound)));
        producer.kill();
        test::join_bounded(producer);
        // Another producer goes on; what the killed one left is whole messages or nothing.
        Process next({.start_method = method}, put_marked, queue, 20);
        next.start();
        int marked = 0;
        while (marked < 20) {
            const auto message = queue.get(true, test::bound);
            if (message.size() == 2 && message[0] == -1) {
                CHECK(message[1] == marked);
                ++marked;
            } else {
                CHECK(intact(message));
            }
        }
        CHECK(test::join_bounded(next) == 0);
    }
}

TEST_CASE("JoinableQueue counts tasks and join waits for them", "[queues]") {
    IPC_EACH_START_METHOD(method);
    ipc::JoinableQueue<int> tasks;
    ipc::RawValue<int> total;
    CHECK_THROWS_AS(tasks.task_done(), ipc::ValueError);
    CHECK(tasks.join(0ms));
    for (int i = 1; i <= 100; ++i) tasks.put(i);
    CHECK_FALSE(tasks.join(10ms));
    Process worker({.start_method = method}, work_through, tasks, total);
    worker.start();
    tasks.put(-1);
    CHECK(tasks.join(test::bound));
    CHECK(total.load() == 5050);
    CHECK(test::join_bounded(worker) == 0);
    CHECK_THROWS_AS(tasks.task_done(), ipc::ValueError);
}

namespace {
/// Puts `rounds` times a text of every length from 0 to 600, each of its own letter pattern: a
/// std::string (encoded by cereal into a buffer first) or a std::vector<char> (straight into the ring).
template <class Text>
int put_every_length(ipc::Queue<Text> queue, int rounds) {
    for (int round = 0; round < rounds; ++round)
        for (std::size_t length = 0; length <= 600; ++length) {
            Text text(length, ' ');
            for (std::size_t i = 0; i < length; ++i) text[i] = static_cast<char>('a' + (length + i) % 26);
            queue.put(text);
        }
    return 0;
}
}  // namespace

TEMPLATE_TEST_CASE("items of every size cross the end of a small queue's ring intact and in order", "[queues]", std::string,
                   std::vector<char>) {
    IPC_EACH_START_METHOD(method);
    ipc::Queue<TestType> queue(0, 4096);
    constexpr int rounds = 3;
    Process producer({.start_method = method}, put_every_length<TestType>, queue, rounds);
    producer.start();
    int wrong = 0;
    for (int round = 0; round < rounds; ++round)
        for (std::size_t length = 0; length <= 600; ++length) {
            const auto text = queue.get(true, test::bound);
            bool intact = text.size() == length;
            for (std::size_t i = 0; intact && i < length; ++i) intact = text[i] == static_cast<char>('a' + (length + i) % 26);
            wrong += intact ? 0 : 1;
        }
    CHECK(wrong == 0);
    CHECK(queue.empty());
    CHECK(test::join_bounded(producer) == 0);
}

namespace {
/// Puts vectors of 1000 to 1019 KiB of numbers through a 64 KiB ring: each streams in chunks.
int put_large_vectors(ipc::Queue<std::vector<std::uint64_t>> queue, int count) {
    for (int i = 0; i < count; ++i) {
        std::vector<std::uint64_t> numbers(static_cast<std::size_t>(128 * (1000 + i)));
        std::iota(numbers.begin(), numbers.end(), static_cast<std::uint64_t>(i) << 32);
        queue.put(numbers);
    }
    return 0;
}
}  // namespace

namespace {
/// Puts `count` vectors of 160 KB (2.5 times the ring) numbered by producer and sequence.
int put_streams(ipc::Queue<std::vector<std::uint64_t>> queue, int producer, int count) {
    for (int i = 0; i < count; ++i) {
        std::vector<std::uint64_t> numbers(20'000);
        std::iota(numbers.begin(), numbers.end(), (static_cast<std::uint64_t>(producer) << 48) + (static_cast<std::uint64_t>(i) << 24));
        queue.put(numbers);
    }
    return 0;
}
}  // namespace

TEST_CASE("two producers streaming messages larger than the ring at once: each arrives whole, once, in order",
          "[queues]") {
    IPC_EACH_START_METHOD(method);
    ipc::Queue<std::vector<std::uint64_t>> queue(0, 64 << 10);
    constexpr int count = 100;
    Process first({.start_method = method}, put_streams, queue, 1, count);
    Process second({.start_method = method}, put_streams, queue, 2, count);
    test::Reaper reap_first(first), reap_second(second);
    first.start();
    second.start();
    int next[3] = {0, 0, 0};
    int wrong = 0;
    for (int i = 0; i < 2 * count; ++i) {
        const auto numbers = queue.get(true, test::bound);
        const auto producer = numbers.empty() ? 0 : static_cast<int>(numbers[0] >> 48);
        const auto sequence = numbers.empty() ? -1 : static_cast<int>((numbers[0] >> 24) & 0xffffff);
        bool intact = numbers.size() == 20'000 && (producer == 1 || producer == 2) && sequence == next[producer];
        for (std::size_t k = 0; intact && k < numbers.size(); ++k) intact = numbers[k] == numbers[0] + k;
        if (intact) ++next[producer];
        wrong += intact ? 0 : 1;
    }
    CHECK(wrong == 0);
    CHECK(next[1] == count);
    CHECK(next[2] == count);
    CHECK(test::join_bounded(first) == 0);
    CHECK(test::join_bounded(second) == 0);
}

TEST_CASE("vectors larger than the queue's ring stream through it intact and in order", "[queues]") {
    IPC_EACH_START_METHOD(method);
    ipc::Queue<std::vector<std::uint64_t>> queue(0, 64 << 10);
    constexpr int count = 20;
    Process producer({.start_method = method}, put_large_vectors, queue, count);
    producer.start();
    int wrong = 0;
    for (int i = 0; i < count; ++i) {
        const auto numbers = queue.get(true, test::bound);
        bool intact = numbers.size() == static_cast<std::size_t>(128 * (1000 + i));
        for (std::size_t k = 0; intact && k < numbers.size(); ++k) intact = numbers[k] == ((static_cast<std::uint64_t>(i) << 32) + k);
        wrong += intact ? 0 : 1;
    }
    CHECK(wrong == 0);
    CHECK(test::join_bounded(producer) == 0);
}

namespace {
/// Takes vectors until an empty one, checks each, and marks every one done (the empty one too).
int check_and_finish(ipc::JoinableQueue<std::vector<std::uint64_t>> tasks, ipc::RawValue<int> wrong) {
    for (int i = 0;; ++i) {
        const auto numbers = tasks.get(true, test::bound);
        if (numbers.empty()) {
            tasks.task_done();
            return 0;
        }
        bool intact = numbers.size() == static_cast<std::size_t>(128 * (1000 + i));
        for (std::size_t k = 0; intact && k < numbers.size(); ++k) intact = numbers[k] == ((static_cast<std::uint64_t>(i) << 32) + k);
        if (!intact) wrong.fetch_add(1);
        tasks.task_done();
    }
}
}  // namespace

TEST_CASE("a JoinableQueue counts values larger than its ring, which stream through it", "[queues]") {
    IPC_EACH_START_METHOD(method);
    ipc::JoinableQueue<std::vector<std::uint64_t>> tasks(0, 64 << 10);
    ipc::RawValue<int> wrong;
    Process worker({.start_method = method}, check_and_finish, tasks, wrong);
    worker.start();
    for (int i = 0; i < 10; ++i) {
        std::vector<std::uint64_t> numbers(static_cast<std::size_t>(128 * (1000 + i)));
        std::iota(numbers.begin(), numbers.end(), static_cast<std::uint64_t>(i) << 32);
        tasks.put(numbers);
    }
    tasks.put({});
    CHECK(tasks.join(test::bound));
    CHECK(wrong.load() == 0);
    CHECK(test::join_bounded(worker) == 0);
    CHECK_THROWS_AS(tasks.task_done(), ipc::ValueError);
}

TEST_CASE("SimpleQueue carries strings both ways", "[queues]") {
    IPC_EACH_START_METHOD(method);
    ipc::SimpleQueue<std::string> in, out;
    Process echo({.start_method = method}, simple_echo, in, out);
    echo.start();
    CHECK(out.empty());
    in.put("a");
    in.put(std::string(100'000, 'b'));
    // SimpleQueue.get has no timeout, as in Python: wait for the answer (bounded) before taking it.
    REQUIRE(test::eventually([&] { return !out.empty(); }));
    CHECK(out.get() == "a!");
    REQUIRE(test::eventually([&] { return !out.empty(); }));
    CHECK(out.get().size() == 100'001);
    in.put("stop");
    CHECK(test::join_bounded(echo) == 0);
}

namespace {
constexpr std::size_t frozen_message_words = 128 << 10;  // 1 MiB: it streams through a 64 KiB ring

/// Puts a 1 MiB message, then a small one.
int put_large_then_small(ipc::Queue<std::vector<std::uint64_t>> queue) {
    std::vector<std::uint64_t> numbers(frozen_message_words);
    std::iota(numbers.begin(), numbers.end(), std::uint64_t{1} << 40);
    queue.put(numbers);
    queue.put({7});
    return 0;
}

/// Another consumer, while the first holds a message it began: it gets nothing of it.
int get_expecting_empty(ipc::Queue<std::vector<std::uint64_t>> queue) {
    try {
        (void)queue.get(true, 300ms);
        return 1;
    } catch (const ipc::Empty&) {
        return 0;
    }
}
}  // namespace

TEST_CASE("a get whose producer froze halfway through a large put says Empty in time, and a later get has it whole",
          "[queues]") {
    IPC_EACH_START_METHOD(method);
    ipc::Queue<std::vector<std::uint64_t>> queue(0, 64 << 10);
    Process producer({.start_method = method}, put_large_then_small, queue);
    test::Reaper reaper(producer);
    producer.start();
    // The first chunks fill the ring and the producer sleeps until there is room: freeze it there.
    REQUIRE(test::eventually([&] { return test::sleeps_on_futex(*producer.pid()); }));
    REQUIRE(::kill(*producer.pid(), SIGSTOP) == 0);
    // Each get takes what came and waits for the rest only as long as its timeout.
    CHECK_THROWS_AS(queue.get(true, 300ms), ipc::Empty);
    CHECK_THROWS_AS(queue.get(true, 300ms), ipc::Empty);
    CHECK_THROWS_AS(queue.get_nowait(), ipc::Empty);
    CHECK(test::run(method, get_expecting_empty, queue) == 0);
    REQUIRE(::kill(*producer.pid(), SIGCONT) == 0);
    const auto numbers = queue.get(true, test::bound);
    REQUIRE(numbers.size() == frozen_message_words);
    std::size_t wrong = 0;
    for (std::size_t k = 0; k < numbers.size(); ++k) wrong += numbers[k] == (std::uint64_t{1} << 40) + k ? 0 : 1;
    CHECK(wrong == 0);
    CHECK(queue.get(true, test::bound) == std::vector<std::uint64_t>{7});
    CHECK(test::join_bounded(producer) == 0);
}

TEST_CASE("a consumer killed in the middle of gets loses at most the message it was taking", "[queues]") {
    IPC_EACH_START_METHOD(method);
    constexpr int total = 1000;  // 100 MB: the consumer is killed long before the end
    ipc::Queue<std::vector<int>> queue(0, 64 << 10);
    ipc::RawValue<int> taken;
    Process producer({.start_method = method}, put_numbered, queue, total);
    Process consumer({.start_method = method}, take_and_count, queue, taken);
    test::Reaper reap_producer(producer), reap_consumer(consumer);
    consumer.start();
    producer.start();
    REQUIRE(test::eventually([&] { return taken.load() >= 3; }));
    consumer.kill();
    // Not an exit of its own: 1 would mean it saw a torn message, 0 that it took all 1000.
    REQUIRE(test::join_bounded(consumer) == -SIGKILL);
    int mine = 0;
    int last = -1;
    for (;;) {
        const auto message = queue.get(true, test::bound);
        if (message.size() == 1 && message[0] == -5) break;
        REQUIRE(intact(message));
        CHECK(message[0] > last);
        last = message[0];
        ++mine;
    }
    CHECK(test::join_bounded(producer) == 0);
    const int lost = total - taken.load() - mine;
    CHECK(lost >= 0);
    CHECK(lost <= 1);
}

namespace {
int churn_tasks(ipc::JoinableQueue<int> tasks, int rounds) {
    for (int i = 0; i < rounds; ++i) {
        tasks.put(i);
        (void)tasks.get();
        tasks.task_done();
    }
    return 0;
}
}  // namespace

TEST_CASE("join returns while other processes keep putting and finishing tasks", "[queues]") {
    IPC_EACH_START_METHOD(method);
    ipc::JoinableQueue<int> tasks;
    Process worker({.start_method = method}, churn_tasks, tasks, 200'000);
    worker.start();
    int joined = 0;
    while (worker.is_alive() && joined < 200) {
        REQUIRE(tasks.join(test::bound));  // a missed wake-up would sleep here until the bound
        ++joined;
    }
    CHECK(test::join_bounded(worker) == 0);
    CHECK(tasks.join(0ms));
}
