// Boost.Asio integration under fork and spawn: async_recv, async_send and async_get with callbacks,
// use_future and coroutines; full rings, several consumers, EOF on exit and SIGKILL, cancellation.
#include <signal.h>

#include <utility>  // before Boost 1.74's awaitable.hpp, which uses std::exchange without it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <array>
#include <atomic>
#include <functional>

#include "harness.hpp"
#include "ipc/asio.hpp"
#include "ipc/sharedctypes.hpp"
#include "ipc/synchronize.hpp"

using namespace std::chrono_literals;
using ipc::Connection;
using ipc::Process;
using ipc::asio::AsyncConnection;
using ipc::asio::AsyncQueue;
namespace net = boost::asio;
namespace test = ipc::test;

namespace {

/// A message with some weight: 128 bytes of ring per message, so 32 fill a 4 KiB ring.
struct Numbered {
    int sequence;
    std::array<char, 60> padding;
};

int send_numbers(Connection conn, int count) {
    for (int i = 0; i < count; ++i) conn.send(i);
    return 0;
}

/// Waits for `go`, then takes `count` messages, now and then pausing (a slow reader, so that the
/// sender meets a full ring again and again); 0 when all came once and in order.
int drain_slowly(Connection conn, ipc::Event go, int count) {
    if (!go.wait(test::bound)) return 2;
    for (int i = 0; i < count; ++i) {
        if (conn.recv<Numbered>().sequence != i) return 1;
        if (i % 50 == 0) std::this_thread::sleep_for(1ms);  // slowness, not synchronization
    }
    return 0;
}

void hold_end_forever(Connection conn, ipc::Event ready) {
    ready.set();
    ::pause();
    conn.close();
}

/// Holds its end until `release`, then returns: its exit lets go of the end.
int hold_end_until(Connection, ipc::Event ready, ipc::Event release) {
    ready.set();
    return release.wait(test::bound) ? 0 : 1;
}

int echo_until_eof(Connection conn) {
    int count = 0;
    try {
        for (;;) {
            conn.send(conn.recv<int>());
            ++count;
        }
    } catch (const ipc::EOFError&) {
        return count;
    }
}

int put_numbers(ipc::Queue<int> queue, int count, int stops) {
    for (int i = 0; i < count; ++i) queue.put(i);
    for (int i = 0; i < stops; ++i) queue.put(-1);
    return 0;
}

int put_tasks(ipc::JoinableQueue<int> tasks, int count) {
    for (int i = 0; i < count; ++i) tasks.put(i);
    tasks.put(-1);
    return 0;
}

/// Consumes with async_get until -1, counting every item in `seen`.
void consume_with_callbacks(AsyncQueue<int>& queue, ipc::RawArray<int> seen, int& taken) {
    queue.async_get([&queue, seen, &taken](std::exception_ptr error, int item) mutable {
        if (error || item < 0) return;
        std::atomic_ref<int>(seen[static_cast<std::size_t>(item)]).fetch_add(1);
        ++taken;
        consume_with_callbacks(queue, seen, taken);
    });
}

/// A child running `target(end, args...)`: started with `method`, then this process's copy of
/// `end` is closed, so the child holds that end alone; killed and reaped if the test ends first.
class ChildHolding {
public:
    template <class F, class... Args>
    ChildHolding(ipc::StartMethod method, F target, Connection& end, const Args&... args)
        : process_(ipc::ProcessOptions{.start_method = method}, target, end, args...) {
        process_.start();
        end.close();
    }
    std::optional<int> join() { return test::join_bounded(process_); }
    void kill() { process_.kill(); }

private:
    Process process_;
    test::Reaper reaper_{process_};
};

/// The parent's end of a Pipe with an AsyncConnection on it, and a child at the other end that
/// echoes every int until end of file.
struct EchoPeer {
    explicit EchoPeer(ipc::StartMethod method) : EchoPeer(method, ipc::Pipe()) {}
    Connection mine;
    ChildHolding echo;
    net::io_context io;
    AsyncConnection conn;

private:
    EchoPeer(ipc::StartMethod method, std::pair<Connection, Connection> ends)
        : mine(ends.first), echo(method, echo_until_eof, ends.second), conn(io, mine) {}
};

/// Runs `io` until it has no work left, within the test's bound; false when work was left (an
/// operation still pending, or a read the library forgot to end, which would keep run() going).
bool run_out(net::io_context& io) {
    io.restart();
    io.run_for(test::bound);
    return io.stopped();
}

/// A consumer in a child: its own io_context, callbacks.
int consume_in_child(ipc::Queue<int> queue, ipc::RawArray<int> seen) {
    net::io_context io;
    AsyncQueue<int> async_queue(io, queue);
    int taken = 0;
    consume_with_callbacks(async_queue, seen, taken);
    return run_out(io) ? 0 : 1;
}

net::awaitable<void> consume_with_coroutine(AsyncQueue<int>& queue, ipc::RawArray<int> seen, int& taken) {
    for (;;) {
        const int item = co_await queue.async_get(net::use_awaitable);
        if (item < 0) co_return;
        std::atomic_ref<int>(seen[static_cast<std::size_t>(item)]).fetch_add(1);
        ++taken;
    }
}

/// Keeps the first exception a detached coroutine ends with.
struct Outcome {
    std::exception_ptr error;
    bool done = false;
    auto handler() {
        return [this](std::exception_ptr e) {
            error = e;
            done = true;
        };
    }
};

template <class Exception>
bool holds(std::exception_ptr error) {
    try {
        if (error) std::rethrow_exception(error);
    } catch (const Exception&) {
        return true;
    } catch (...) {
    }
    return false;
}

bool aborted(std::exception_ptr error) {
    try {
        if (error) std::rethrow_exception(error);
    } catch (const boost::system::system_error& e) {
        return e.code() == net::error::operation_aborted;
    } catch (...) {
    }
    return false;
}

/// Runs the handlers that are ready now, until none is: what is left waits on a descriptor or timer.
void run_ready(net::io_context& io) {
    while (io.poll() > 0) {
    }
}

}  // namespace

TEST_CASE("async_recv takes many messages from a child with callbacks and then EOFError", "[asio]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    auto [reader, writer] = ipc::Pipe(false, 4096);  // small: both sides wait for each other often
    ChildHolding child(method, send_numbers, writer, 20000);

    net::io_context io;
    AsyncConnection conn(io, reader);
    int next = 0;
    bool in_order = true;
    std::exception_ptr end;
    std::function<void()> receive = [&] {
        conn.async_recv<int>([&](std::exception_ptr error, int value) {
            if (error) {
                end = error;
                return;
            }
            in_order = in_order && value == next;
            ++next;
            receive();
        });
    };
    receive();
    CHECK(run_out(io));
    CHECK(next == 20000);
    CHECK(in_order);
    CHECK(holds<ipc::EOFError>(end));
    CHECK(child.join() == 0);
}

namespace {
net::awaitable<void> receive_until_eof(AsyncConnection& conn, int& count, bool& in_order, bool& saw_eof) {
    try {
        for (;;) {
            const int value = co_await conn.async_recv<int>(net::use_awaitable);
            in_order = in_order && value == count;
            ++count;
        }
    } catch (const ipc::EOFError&) {
        saw_eof = true;  // a coroutine sees the error as an exception
    }
}
}  // namespace

TEST_CASE("a coroutine co_awaits async_recv until EOFError when the child exits", "[asio]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    auto [reader, writer] = ipc::Pipe(false, 64 << 10);
    ChildHolding child(method, send_numbers, writer, 50000);

    net::io_context io;
    AsyncConnection conn(io, reader);
    int count = 0;
    bool in_order = true, saw_eof = false;
    Outcome outcome;
    net::co_spawn(io, receive_until_eof(conn, count, in_order, saw_eof), outcome.handler());
    CHECK(run_out(io));
    CHECK(outcome.done);
    CHECK_FALSE(outcome.error);
    CHECK(count == 50000);
    CHECK(in_order);
    CHECK(saw_eof);
    CHECK(child.join() == 0);
}

TEST_CASE("use_future gives a future for async_recv and async_send", "[asio]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    EchoPeer peer(method);
    auto& [mine, echo, io, conn] = peer;
    auto sent = conn.async_send(42, net::use_future);
    auto answer = conn.async_recv<int>(net::use_future);
    CHECK(run_out(io));  // returns once both operations are done
    REQUIRE(sent.wait_for(0s) == std::future_status::ready);
    REQUIRE(answer.wait_for(0s) == std::future_status::ready);
    CHECK_NOTHROW(sent.get());
    CHECK(answer.get() == 42);
    mine.close();
    CHECK(echo.join() == 1);

    // A message of another type reaches future::get() as the CodecError.
    auto [a, b] = ipc::Pipe();
    a.send(std::string("text"));
    auto mistyped = ipc::asio::async_recv<int>(b, io, net::use_future);
    CHECK(run_out(io));
    REQUIRE(mistyped.wait_for(0s) == std::future_status::ready);
    CHECK_THROWS_AS(mistyped.get(), ipc::CodecError);
}

namespace {
net::awaitable<void> send_numbered(AsyncConnection& conn, int count, int& sent) {
    for (int i = 0; i < count; ++i) {
        co_await conn.async_send(Numbered{i, {}}, net::use_awaitable);
        ++sent;
    }
}
}  // namespace

TEST_CASE("async_send waits for room in a full ring while a child slowly drains it", "[asio]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    constexpr int count = 3000;
    auto [reader, writer] = ipc::Pipe(false, 4096);  // 32 messages fill it
    ipc::Event go;
    ChildHolding child(method, drain_slowly, reader, go, count);

    net::io_context io;
    AsyncConnection conn(io, writer);
    int sent = 0;
    Outcome outcome;
    net::co_spawn(io, send_numbered(conn, count, sent), outcome.handler());
    // Nothing drains yet: the sender fills the ring, then its operation waits and the loop is idle.
    run_ready(io);
    CHECK(sent >= 30);
    CHECK(sent < 40);
    CHECK_FALSE(outcome.done);
    go.set();
    CHECK(run_out(io));
    CHECK(outcome.done);
    CHECK_FALSE(outcome.error);
    CHECK(sent == count);
    CHECK(child.join() == 0);  // each message once, in order
}

TEST_CASE("async_get from a Queue fed by a child: three consumers take each item exactly once", "[asio]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    constexpr int count = 20000;
    ipc::Queue<int> queue(0, 16 << 10);
    ipc::RawArray<int> seen(count);
    // Two consumers in this process's io_context (each its own AsyncQueue), one in a child.
    Process other({.start_method = method}, consume_in_child, queue, seen);
    test::Reaper other_reaper(other);
    other.start();
    net::io_context io;
    AsyncQueue<int> first(io, queue), second(io, queue);
    int taken_first = 0, taken_second = 0;
    Outcome first_outcome, second_outcome;
    net::co_spawn(io, consume_with_coroutine(first, seen, taken_first), first_outcome.handler());
    net::co_spawn(io, consume_with_coroutine(second, seen, taken_second), second_outcome.handler());
    Process producer({.start_method = method}, put_numbers, queue, count, 3);
    test::Reaper producer_reaper(producer);
    producer.start();

    CHECK(run_out(io));
    CHECK(first_outcome.done);
    CHECK(second_outcome.done);
    CHECK_FALSE(first_outcome.error);
    CHECK_FALSE(second_outcome.error);
    CHECK(test::join_bounded(producer) == 0);
    CHECK(test::join_bounded(other) == 0);
    int wrong = 0;
    for (int i = 0; i < count; ++i) wrong += seen[static_cast<std::size_t>(i)] != 1;
    CHECK(wrong == 0);
    INFO("taken here: " << taken_first << " + " << taken_second);
    CHECK(taken_first + taken_second <= count);
}

TEST_CASE("async_get serves SimpleQueue and JoinableQueue with the one-off functions", "[asio]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::JoinableQueue<int> tasks;
    Process producer({.start_method = method}, put_tasks, tasks, 5);
    test::Reaper reaper(producer);
    producer.start();
    net::io_context io;
    int total = 0;
    std::function<void()> next = [&] {
        ipc::asio::async_get(tasks, io, [&](std::exception_ptr error, int item) {
            CHECK_FALSE(error);
            if (error) return;
            tasks.task_done();
            if (item < 0) return;
            total += item;
            next();
        });
    };
    next();
    CHECK(run_out(io));
    CHECK(total == 0 + 1 + 2 + 3 + 4);
    CHECK(tasks.join(test::bound));
    CHECK(test::join_bounded(producer) == 0);

    ipc::SimpleQueue<std::string> simple;
    auto text = ipc::asio::async_get(simple, io, net::use_future);
    simple.put("hello");
    CHECK(run_out(io));
    REQUIRE(text.wait_for(0s) == std::future_status::ready);
    CHECK(text.get() == "hello");
}

TEST_CASE("async_recv reports EOFError when the holder of the other end is killed", "[asio]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    auto [mine, theirs] = ipc::Pipe();
    ipc::Event ready;
    ChildHolding holder(method, hold_end_forever, theirs, ready);
    REQUIRE(ready.wait(test::bound));

    net::io_context io;
    std::exception_ptr error;
    bool called = false;
    ipc::asio::async_recv<int>(mine, io, [&](std::exception_ptr e, int) {
        error = e;
        called = true;
    });
    run_ready(io);
    CHECK_FALSE(called);  // waiting: the holder lives and sends nothing
    holder.kill();        // SIGKILL: it cannot signal; the operation's periodic look finds it gone
    CHECK(run_out(io));
    CHECK(called);
    CHECK(holds<ipc::EOFError>(error));
    holder.join();
}

TEST_CASE("async_send reports BrokenPipeError when the reader is killed while the ring is full", "[asio]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    auto [reader, writer] = ipc::Pipe(false, 4096);
    ipc::Event ready;
    ChildHolding holder(method, hold_end_forever, reader, ready);
    REQUIRE(ready.wait(test::bound));

    net::io_context io;
    AsyncConnection conn(io, writer);
    int sent = 0;
    Outcome outcome;
    net::co_spawn(io, send_numbered(conn, 1000, sent), outcome.handler());
    run_ready(io);
    CHECK_FALSE(outcome.done);  // the ring is full and nobody reads
    holder.kill();
    CHECK(run_out(io));
    CHECK(outcome.done);
    CHECK(holds<ipc::BrokenPipeError>(outcome.error));
    CHECK(sent < 40);
    holder.join();
}

TEST_CASE("async_recv reports EOFError at once when the other end is closed", "[asio]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    auto [mine, theirs] = ipc::Pipe();
    ipc::Event ready, release;
    ChildHolding holder(method, hold_end_until, theirs, ready, release);
    REQUIRE(ready.wait(test::bound));

    net::io_context io;
    AsyncConnection conn(io, mine);
    std::exception_ptr error;
    bool called = false;
    conn.async_recv<int>([&](std::exception_ptr e, int) {
        error = e;
        called = true;
    });
    run_ready(io);
    CHECK_FALSE(called);
    release.set();
    CHECK(holder.join() == 0);
    // Its exit signalled the descriptor: the handlers ready now end the operation, with no
    // wait for the periodic look.
    run_ready(io);
    CHECK(called);
    CHECK(holds<ipc::EOFError>(error));
}

TEST_CASE("cancel ends outstanding operations with operation_aborted and loses no message", "[asio]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    EchoPeer peer(method);
    auto& [mine, echo, io, conn] = peer;
    std::exception_ptr first, second;
    int calls = 0;
    conn.async_recv<int>([&](std::exception_ptr e, int) {
        first = e;
        ++calls;
    });
    conn.async_recv<int>([&](std::exception_ptr e, int) {
        second = e;
        ++calls;
    });
    run_ready(io);
    CHECK(calls == 0);
    conn.cancel();
    CHECK(run_out(io));
    CHECK(calls == 2);
    CHECK(aborted(first));
    CHECK(aborted(second));

    // The connection still works, and what arrives after the cancel is there to take.
    mine.send(7);
    CHECK(mine.recv<int>() == 7);
    auto later = conn.async_recv<int>(net::use_future);
    mine.send(8);
    CHECK(run_out(io));
    CHECK(later.get() == 8);
    mine.close();
    CHECK(echo.join() == 2);
}

TEST_CASE("an io_context destroyed or stopped with outstanding operations leaks nothing", "[asio]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    auto [mine, theirs] = ipc::Pipe(true, 4096);
    ipc::Queue<int> queue;
    ipc::Event ready;
    ChildHolding holder(method, hold_end_forever, theirs, ready);
    REQUIRE(ready.wait(test::bound));
    int calls = 0;
    {
        net::io_context io;
        // One-off operations own their wrapper; the io_context's destruction destroys both.
        ipc::asio::async_recv<int>(mine, io, [&](std::exception_ptr, int) { ++calls; });
        ipc::asio::async_get(queue, io, [&](std::exception_ptr, int) { ++calls; });
        Outcome outcome;
        AsyncConnection conn(io, mine);
        int sent = 0;
        net::co_spawn(io, send_numbered(conn, 100, sent), outcome.handler());  // the ring fills
        run_ready(io);
        CHECK(sent >= 30);
        io.stop();
        CHECK(calls == 0);
        CHECK_FALSE(outcome.done);
    }  // conn, then io: the coroutine's frame and the operations go with it
    CHECK(calls == 0);
    holder.kill();
    holder.join();
    // The queue still works, and nothing was taken from it.
    queue.put(5);
    CHECK(queue.get(true, test::bound) == 5);
}

namespace {
net::awaitable<void> ask_echo(AsyncConnection& conn, int base, int count, int& answered) {
    for (int i = 0; i < count; ++i) {
        co_await conn.async_send(base + i, net::use_awaitable);
        if (co_await conn.async_recv<int>(net::use_awaitable) != base + i) co_return;
        ++answered;
    }
}
}  // namespace

TEST_CASE("one io_context serves several connections at once", "[asio]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    constexpr int peers = 3, rounds = 200;  // an exit code reports the count
    net::io_context io;
    std::vector<std::unique_ptr<ChildHolding>> children;
    std::vector<AsyncConnection> connections;
    for (int p = 0; p < peers; ++p) {
        auto [mine, theirs] = ipc::Pipe();
        children.push_back(std::make_unique<ChildHolding>(method, echo_until_eof, theirs));
        connections.emplace_back(io, mine);
    }
    std::array<int, peers> answered{};
    std::array<Outcome, peers> outcomes;
    for (int p = 0; p < peers; ++p)
        net::co_spawn(io, ask_echo(connections[static_cast<std::size_t>(p)], p * 1000, rounds, answered[p]),
                      outcomes[static_cast<std::size_t>(p)].handler());
    CHECK(run_out(io));
    for (int p = 0; p < peers; ++p) {
        CHECK(outcomes[static_cast<std::size_t>(p)].done);
        CHECK(answered[static_cast<std::size_t>(p)] == rounds);
    }
    for (auto& conn : connections) conn.connection().close();
    for (auto& child : children) CHECK(child->join() == rounds);
}

TEST_CASE("a Queue that came inside a message still serves async_get", "[asio]") {
    test::LeakCheck leaks;
    ipc::Queue<int> queue;
    auto [a, b] = ipc::Pipe();
    a.send(queue);  // no descriptor can go inside a message: the copy has none
    auto copy = b.recv<ipc::Queue<int>>();
    net::io_context io;
    auto item = ipc::asio::async_get(copy, io, net::use_future);
    run_ready(io);
    queue.put(9);
    CHECK(run_out(io));
    REQUIRE(item.wait_for(0s) == std::future_status::ready);
    CHECK(item.get() == 9);
}

TEST_CASE("async_recv_bytes gives raw bytes and async_recv of a byte vector decodes it", "[asio]") {
    auto [a, b] = ipc::Pipe();
    net::io_context io;
    AsyncConnection conn(io, b);
    const std::vector<std::byte> bytes{std::byte{1}, std::byte{2}, std::byte{3}};
    a.send_bytes(bytes);
    a.send(bytes);
    auto raw = conn.async_recv_bytes(net::use_future);
    auto typed = conn.async_recv<std::vector<std::byte>>(net::use_future);
    CHECK(run_out(io));
    CHECK(raw.get() == bytes);
    CHECK(typed.get() == bytes);
    // and the other way round
    auto sent = conn.async_send_bytes(bytes, net::use_future);
    CHECK(run_out(io));
    CHECK_NOTHROW(sent.get());
    CHECK(a.recv_bytes() == bytes);
}

TEST_CASE("async_send of a message that would have to stream is a ValueError", "[asio]") {
    auto [reader, writer] = ipc::Pipe(false, 4096);
    net::io_context io;
    AsyncConnection conn(io, writer);
    auto sent = conn.async_send(std::vector<char>(3000), net::use_future);
    CHECK(run_out(io));
    CHECK_THROWS_AS(sent.get(), ipc::ValueError);
    CHECK_FALSE(reader.poll());  // nothing half-sent
}
