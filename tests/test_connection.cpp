// Pipe and Connection under fork and spawn: messages whole and in order, EOF when every holder of
// the other end is gone (closed or killed), BufferTooShort that keeps the message, 16 MiB messages.
#include <poll.h>
#include <signal.h>

#include <array>
#include <numeric>
#include <set>

#include "harness.hpp"
#include "ipc/connection.hpp"
#include "ipc/queues.hpp"
#include "ipc/sharedctypes.hpp"
#include "ipc/synchronize.hpp"

using namespace std::chrono_literals;
using ipc::Connection;
using ipc::Process;
namespace test = ipc::test;

namespace {

std::vector<std::byte> bytes_of(std::string_view text) {
    const auto* data = reinterpret_cast<const std::byte*>(text.data());
    return {data, data + text.size()};
}

using Note = std::optional<std::string>;  // Python's messages here: strings, and None

/// What a message was, as an exit code: 1 "I1_send1", 2 "I1_send2", 3 None.
int code_of(const Note& note) { return !note ? 3 : *note == "I1_send1" ? 1 : *note == "I1_send2" ? 2 : 9; }

/// The seed's func_pipe1: two sends, then two receives (which must be I2's and I3's ids).
int pipe_sender_then_receiver(Connection conn, std::string id) {
    conn.send(Note(id + "_send1"));
    conn.send(Note(id + "_send2"));
    const auto first = conn.recv<Note>();
    const auto second = conn.recv<Note>();
    const std::set<Note> got{first, second};
    return got == std::set<Note>{Note("I2"), Note("I3")} ? 0 : 1;
}

/// The seed's func_pipe2: one send, one receive; says what it received.
int pipe_send_then_receive(Connection conn, std::string id) {
    conn.send(Note(id));
    return code_of(conn.recv<Note>());
}

int echo_until_eof(Connection conn) {
    int count = 0;
    try {
        for (;;) {
            conn.send(conn.recv<std::string>());
            ++count;
        }
    } catch (const ipc::EOFError&) {
        return count;
    }
}

int expect_eof(Connection conn) {
    try {
        (void)conn.recv<int>();
        return 1;
    } catch (const ipc::EOFError&) {
        return 0;
    }
}

void hold_end_forever(Connection conn, ipc::Event ready) {
    ready.set();
    ::pause();
    conn.close();
}

int send_big(Connection conn, std::size_t size) {
    std::vector<std::uint8_t> data(size);
    std::iota(data.begin(), data.end(), std::uint8_t{0});
    conn.send(data);
    return 0;
}

/// The byte at `index` of the message of `size` bytes that sized_messages sends.
std::byte pattern(std::size_t size, std::size_t index) { return std::byte((size * 7 + index) & 0xff); }

/// Receives `rounds` times every size from 0 to 600 bytes, the same way sized_messages sends them,
/// by turns into a buffer and as a new vector; says how many were wrong.
int receive_sized_messages(Connection conn, int rounds) {
    int wrong = 0;
    std::vector<std::byte> buffer(1024);
    for (int round = 0; round < rounds; ++round)
        for (std::size_t size = 0; size <= 600; ++size) {
            const auto message = size % 2 ? conn.recv_bytes()
                                           : std::vector<std::byte>(buffer.begin(),
                                                                    buffer.begin() + static_cast<std::ptrdiff_t>(
                                                                                         conn.recv_bytes_into(buffer)));
            bool intact = message.size() == size;
            for (std::size_t i = 0; intact && i < size; ++i) intact = message[i] == pattern(size, i);
            wrong += intact ? 0 : 1;
        }
    return wrong;
}

/// A plain struct of an odd size: it crosses as its own bytes, straight into the ring and out.
struct Reading {
    std::uint32_t sensor;
    double value;
    std::array<char, 13> label;
    friend bool operator==(const Reading&, const Reading&) = default;
};
Reading reading_of(std::size_t size) {
    Reading reading{static_cast<std::uint32_t>(size), 0.5 * static_cast<double>(size), {}};
    for (std::size_t i = 0; i < reading.label.size(); ++i) reading.label[i] = static_cast<char>('a' + (size + i) % 26);
    return reading;
}
std::vector<std::uint32_t> words_of(std::size_t size) {
    std::vector<std::uint32_t> words(size / 4);
    for (std::size_t i = 0; i < words.size(); ++i) words[i] = static_cast<std::uint32_t>(size * 1000 + i);
    return words;
}
std::vector<std::byte> bytes_of_size(std::size_t size) {
    std::vector<std::byte> bytes(size);
    for (std::size_t i = 0; i < size; ++i) bytes[i] = pattern(size, i);
    return bytes;
}

/// Receives what send_typed_of_every_size sends; says how many values were wrong.
int receive_typed_of_every_size(Connection conn, int rounds) {
    int wrong = 0;
    for (int round = 0; round < rounds; ++round)
        for (std::size_t size = 0; size <= 300; ++size) {
            wrong += conn.recv<std::vector<std::byte>>() == bytes_of_size(size) ? 0 : 1;
            wrong += conn.recv<std::vector<std::uint32_t>>() == words_of(size) ? 0 : 1;
            wrong += conn.recv<Reading>() == reading_of(size) ? 0 : 1;
        }
    return wrong;
}

/// A raw struct with no default constructor and no assignment (a const member): a receive cannot
/// decode it into a value it made first, so it takes the general way.
struct Fixed {
    const std::uint32_t id;
    double value;
};
/// A raw struct whose default constructor sets its members: decoded over them, in place.
struct Defaulted {
    std::uint32_t id = 7;
    double value = 1.5;
    friend bool operator==(const Defaulted&, const Defaulted&) = default;
};
static_assert(ipc::codec::Flat<Fixed> && !ipc::codec::DecodableInPlace<Fixed>);
static_assert(ipc::codec::DecodableInPlace<Defaulted>);

/// Takes each pair from the connection and puts it back through the queues.
int relay_structs(Connection conn, ipc::Queue<Fixed> fixed, ipc::Queue<Defaulted> defaulted, int count) {
    for (int i = 0; i < count; ++i) {
        fixed.put(conn.recv<Fixed>());
        defaulted.put(conn.recv<Defaulted>());
    }
    return 0;
}

int receive_raw_messages(Connection conn, int count) {
    for (int i = 0; i < count; ++i) {
        const auto message = conn.recv_bytes();
        if (message.size() != static_cast<std::size_t>(i)) return 2;
        for (auto byte : message)
            if (byte != std::byte(i & 0xff)) return 3;
    }
    return 0;
}

}  // namespace

TEST_CASE("the seed's pipe program: one end shared by two processes", "[connection]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    auto [conn1, conn2] = ipc::Pipe();
    std::vector<Process> processes;
    processes.emplace_back(ipc::ProcessOptions{.start_method = method}, pipe_sender_then_receiver, conn1, "I1");
    processes.emplace_back(ipc::ProcessOptions{.start_method = method}, pipe_send_then_receive, conn2, "I2");
    processes.emplace_back(ipc::ProcessOptions{.start_method = method}, pipe_send_then_receive, conn2, "I3");
    for (auto& p : processes) p.start();
    conn1.send(Note());  // Python's conn1.send(None)
    // conn2 is read by the parent, I2 and I3: among them they take I1's two messages and the None,
    // each exactly once; I1 takes I2's and I3's ids from conn1.
    std::multiset<int> taken{code_of(test::recv_bounded<Note>(conn2))};
    CHECK(test::join_bounded(processes[0]) == 0);
    taken.insert(*test::join_bounded(processes[1]));
    taken.insert(*test::join_bounded(processes[2]));
    CHECK(taken == std::multiset<int>{1, 2, 3});
}

TEST_CASE("messages arrive whole and in order and an empty message is a message", "[connection]") {
    IPC_EACH_START_METHOD(method);
    auto [reader, writer] = ipc::Pipe(false);
    CHECK(reader.readable());
    CHECK_FALSE(reader.writable());
    CHECK(writer.writable());
    CHECK_FALSE(writer.readable());
    Process child({.start_method = method}, receive_raw_messages, reader, 300);
    child.start();
    reader.close();
    for (int i = 0; i < 300; ++i) {
        std::vector<std::byte> message(static_cast<std::size_t>(i), std::byte(i & 0xff));
        writer.send_bytes(message);
    }
    CHECK(test::join_bounded(child) == 0);
}

TEST_CASE("messages of every size cross the end of a small ring intact", "[connection]") {
    IPC_EACH_START_METHOD(method);
    auto [reader, writer] = ipc::Pipe(false, 4096);  // each round wraps the ring about ten times
    constexpr int rounds = 3;
    Process child({.start_method = method}, receive_sized_messages, reader, rounds);
    child.start();
    reader.close();
    for (int round = 0; round < rounds; ++round)
        for (std::size_t size = 0; size <= 600; ++size) {
            std::vector<std::byte> message(size);
            for (std::size_t i = 0; i < size; ++i) message[i] = pattern(size, i);
            writer.send_bytes(message);
        }
    CHECK(test::join_bounded(child) == 0);
}

TEST_CASE("typed values of every size cross the end of a small ring intact", "[connection]") {
    IPC_EACH_START_METHOD(method);
    auto [reader, writer] = ipc::Pipe(false, 4096);  // values go straight into the ring, and wrap it often
    constexpr int rounds = 3;
    Process child({.start_method = method}, receive_typed_of_every_size, reader, rounds);
    child.start();
    reader.close();
    for (int round = 0; round < rounds; ++round)
        for (std::size_t size = 0; size <= 300; ++size) {
            writer.send(bytes_of_size(size));
            writer.send(words_of(size));
            writer.send(reading_of(size));
        }
    CHECK(test::join_bounded(child) == 0);
}

TEST_CASE("raw structs without a default constructor, or with one that sets members, cross intact", "[connection]") {
    IPC_EACH_START_METHOD(method);
    auto [reader, writer] = ipc::Pipe(false);
    ipc::Queue<Fixed> fixed;
    ipc::Queue<Defaulted> defaulted;
    constexpr int count = 50;
    Process child({.start_method = method}, relay_structs, reader, fixed, defaulted, count);
    child.start();
    reader.close();
    int wrong = 0;
    for (int i = 0; i < count; ++i) {
        const auto id = static_cast<std::uint32_t>(i);
        writer.send(Fixed{id, 0.25 * i});
        writer.send(Defaulted{id, -0.5 * i});
        const auto back = fixed.get(true, 10s);
        wrong += back.id == id && back.value == 0.25 * i ? 0 : 1;
        wrong += defaulted.get(true, 10s) == Defaulted{id, -0.5 * i} ? 0 : 1;
    }
    CHECK(wrong == 0);
    CHECK(test::join_bounded(child) == 0);
}

TEST_CASE("send raises BrokenPipeError once the reader closed its end, also in the middle of a stream", "[connection]") {
    IPC_EACH_START_METHOD(method);
    auto [reader, writer] = ipc::Pipe(false);
    Process child({.start_method = method}, receive_raw_messages, reader, 200);
    child.start();
    reader.close();
    for (int i = 0; i < 200; ++i) writer.send_bytes(std::vector<std::byte>(static_cast<std::size_t>(i), std::byte(i & 0xff)));
    CHECK(test::join_bounded(child) == 0);  // it read them all and closed its end on return
    CHECK_THROWS_AS(writer.send(1), ipc::BrokenPipeError);
}

TEST_CASE("a duplex pipe echoes typed values until the other end closes", "[connection]") {
    IPC_EACH_START_METHOD(method);
    auto [mine, theirs] = ipc::Pipe();
    Process echo({.start_method = method}, echo_until_eof, theirs);
    echo.start();
    theirs.close();
    for (int i = 0; i < 100; ++i) {
        mine.send(std::to_string(i));
        REQUIRE(test::recv_bounded<std::string>(mine) == std::to_string(i));
    }
    mine.close();  // the child reads EOF and returns its count
    CHECK(test::join_bounded(echo) == 100);
}

TEST_CASE("recv raises EOFError when the holder of the other end exits without closing", "[connection]") {
    IPC_EACH_START_METHOD(method);
    auto [mine, theirs] = ipc::Pipe();
    Process holder({.start_method = method}, [](Connection) {}, theirs);
    holder.start();
    theirs.close();
    CHECK(test::join_bounded(holder) == 0);
    CHECK_THROWS_AS(test::recv_bounded<int>(mine), ipc::EOFError);
    CHECK(mine.poll());  // at EOF recv does not block, so poll says so
    CHECK_THROWS_AS(mine.send(1), ipc::BrokenPipeError);
}

TEST_CASE("recv raises EOFError and send BrokenPipeError when the holder of the other end is killed", "[connection]") {
    IPC_EACH_START_METHOD(method);
    auto [mine, theirs] = ipc::Pipe();
    ipc::Event ready;
    Process holder({.start_method = method}, hold_end_forever, theirs, ready);
    test::Reaper reaper(holder);
    holder.start();
    theirs.close();
    REQUIRE(ready.wait(test::bound));
    CHECK_FALSE(mine.poll(20ms));
    for (int i = 0; i < 100; ++i) mine.send(i);  // a stream the holder never reads
    holder.kill();
    test::join_bounded(holder);
    CHECK_THROWS_AS(test::recv_bounded<int>(mine), ipc::EOFError);
    // A send notices within a few dozen sends, or once the ring is full: either way it says so.
    const auto until = std::chrono::steady_clock::now() + test::bound;
    bool broken = false;
    while (!broken && std::chrono::steady_clock::now() < until) {
        try {
            mine.send(1);
        } catch (const ipc::BrokenPipeError&) {
            broken = true;
        }
    }
    CHECK(broken);
}

namespace {
/// Sends one message far larger than the ring, which nobody reads: it stops halfway, waiting for room.
int send_and_wait_for_room(Connection conn, std::size_t size) {
    conn.send_bytes(std::vector<std::byte>(size, std::byte{0x5a}));
    return 0;
}
}  // namespace

TEST_CASE("a sender killed halfway through a message leaves poll and recv nothing of it, though the send end lives on",
          "[connection]") {
    IPC_EACH_START_METHOD(method);
    auto [reader, writer] = ipc::Pipe(false, 64 << 10);
    Process sender({.start_method = method}, send_and_wait_for_room, writer, std::size_t{1} << 20);
    test::Reaper reaper(sender);
    sender.start();
    // This process keeps `writer`: the send end has a live holder all along.
    REQUIRE(test::eventually([&] { return test::sleeps_on_futex(*sender.pid()); }));
    // Begun, and its sender waits for the room only a receive makes: a receive would go on with it.
    CHECK(reader.poll());
    sender.kill();
    REQUIRE(test::join_bounded(sender) == -SIGKILL);
    // Its part is dropped: nothing is ready, and what comes next arrives whole.
    CHECK_FALSE(reader.poll(300ms));
    writer.send_bytes(bytes_of("after"));
    REQUIRE(reader.poll(test::bound));
    CHECK(reader.recv_bytes() == bytes_of("after"));
}

namespace {
/// Holds the send end and sends one message when told, then waits to be killed or exits.
int send_when_told(Connection conn, ipc::Event go) {
    if (!go.wait(test::bound)) return 1;
    conn.send(std::string("from the live one"));
    return 0;
}
}  // namespace

TEST_CASE("one of two holders of the send end killed: the other still sends, and EOF waits for it", "[connection]") {
    IPC_EACH_START_METHOD(method);
    auto [reader, writer] = ipc::Pipe(false);
    ipc::Event held, go;
    Process doomed({.start_method = method}, hold_end_forever, writer, held);
    Process live({.start_method = method}, send_when_told, writer, go);
    test::Reaper reap_doomed(doomed), reap_live(live);
    doomed.start();
    live.start();
    writer.close();
    REQUIRE(held.wait(test::bound));
    doomed.kill();
    REQUIRE(test::join_bounded(doomed) == -SIGKILL);
    // The live holder keeps the end open: no end of file while it lives.
    CHECK_FALSE(reader.poll(300ms));
    go.set();
    CHECK(test::recv_bounded<std::string>(reader) == "from the live one");
    CHECK(test::join_bounded(live) == 0);
    CHECK_THROWS_AS(test::recv_bounded<std::string>(reader), ipc::EOFError);
}

TEST_CASE("a child reads EOFError once the parent closes its end", "[connection]") {
    IPC_EACH_START_METHOD(method);
    auto [mine, theirs] = ipc::Pipe();
    Process reader({.start_method = method}, expect_eof, theirs);
    reader.start();
    theirs.close();
    mine.close();
    CHECK(test::join_bounded(reader) == 0);
}

TEST_CASE("a 16 MiB message goes through a 1 MiB ring", "[connection]") {
    IPC_EACH_START_METHOD(method);
    auto [mine, theirs] = ipc::Pipe();
    Process sender({.start_method = method}, send_big, theirs, std::size_t{16} << 20);
    sender.start();
    theirs.close();
    const auto data = test::recv_bounded<std::vector<std::uint8_t>>(mine);
    REQUIRE(data.size() == (std::size_t{16} << 20));
    bool intact = true;
    for (std::size_t i = 0; i < data.size(); ++i) intact = intact && data[i] == static_cast<std::uint8_t>(i);
    CHECK(intact);
    CHECK(test::join_bounded(sender) == 0);
}

namespace {
using Block = std::array<std::uint16_t, 3001>;  // 6002 bytes: more than a 4 KiB ring holds at once
Block block_of(int seed) {
    Block block{};
    for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<std::uint16_t>(seed * 31 + static_cast<int>(i));
    return block;
}
int send_larger_than_the_ring(Connection conn, int count) {
    for (int i = 0; i < count; ++i) {
        conn.send(words_of(4 * static_cast<std::size_t>(10000 + i)));  // ≈40 KB: streams in parts
        conn.send(block_of(i));
        conn.send(bytes_of_size(static_cast<std::size_t>(5000 + i)));
    }
    return 0;
}
}  // namespace

TEST_CASE("typed values larger than the ring stream through it intact", "[connection]") {
    IPC_EACH_START_METHOD(method);
    auto [mine, theirs] = ipc::Pipe(true, 4096);
    constexpr int count = 20;
    Process sender({.start_method = method}, send_larger_than_the_ring, theirs, count);
    sender.start();
    theirs.close();
    int wrong = 0;
    for (int i = 0; i < count; ++i) {
        wrong += test::recv_bounded<std::vector<std::uint32_t>>(mine) == words_of(4 * static_cast<std::size_t>(10000 + i)) ? 0 : 1;
        wrong += test::recv_bounded<Block>(mine) == block_of(i) ? 0 : 1;
        wrong += test::recv_bounded<std::vector<std::byte>>(mine) == bytes_of_size(static_cast<std::size_t>(5000 + i)) ? 0 : 1;
    }
    CHECK(wrong == 0);
    CHECK(test::join_bounded(sender) == 0);
}

TEST_CASE("recv_bytes_into a small buffer is BufferTooShort and keeps the message", "[connection]") {
    auto [a, b] = ipc::Pipe();
    b.send_bytes(bytes_of("hello world"));
    std::vector<std::byte> small(5);
    try {
        a.recv_bytes_into(small);
        FAIL("no BufferTooShort");
    } catch (const ipc::BufferTooShort& e) {
        CHECK(e.size() == 11);
    }
    CHECK_THROWS_AS(a.recv_bytes(4), ipc::BufferTooShort);
    std::vector<std::byte> big(20);
    CHECK(a.recv_bytes_into(big, 3) == 11);
    CHECK(std::string(reinterpret_cast<const char*>(big.data() + 3), 11) == "hello world");
    b.send_bytes(bytes_of("0123456789"), 2, 3);
    CHECK(a.recv_bytes() == bytes_of("234"));
    CHECK_THROWS_AS(b.send_bytes(bytes_of("abc"), 4), ipc::ValueError);
}

TEST_CASE("poll never consumes or splits a message", "[connection]") {
    auto [a, b] = ipc::Pipe();
    CHECK_FALSE(a.poll());
    CHECK_FALSE(a.poll(10ms));
    b.send(std::string("one"));
    b.send(std::string("two"));
    CHECK(a.poll());
    CHECK(a.poll());
    CHECK(a.recv<std::string>() == "one");
    CHECK(a.poll(0ms));
    CHECK(a.recv<std::string>() == "two");
    CHECK_FALSE(a.poll());
}

TEST_CASE("receiving another type than was sent is a CodecError", "[connection]") {
    auto [a, b] = ipc::Pipe();
    b.send(std::string("text"));
    CHECK_THROWS_AS(a.recv<int>(), ipc::CodecError);
    b.send(42);
    CHECK(a.recv<int>() == 42);  // the pipe goes on working
}

TEST_CASE("a value copied straight into the ring is the same message encode() makes", "[connection]") {
    auto [a, b] = ipc::Pipe();
    const std::vector<std::uint16_t> numbers{1, 2, 3, 65535};
    const Note unflat("text");  // an optional string: encoded by cereal into a buffer first
    b.send(numbers);
    b.send(7.5);
    b.send(unflat);
    CHECK(a.recv_bytes() == ipc::encode(numbers));
    CHECK(a.recv_bytes() == ipc::encode(7.5));
    CHECK(a.recv_bytes() == ipc::encode(unflat));
    b.send_bytes(ipc::encode(numbers));
    CHECK(a.recv<std::vector<std::uint16_t>>() == numbers);
    // A message that is not exactly the type asked for is a CodecError, and is consumed.
    auto claims_more = ipc::encode(numbers);
    claims_more[8] = std::byte{9};  // the element count
    b.send_bytes(claims_more);
    CHECK_THROWS_AS(a.recv<std::vector<std::uint16_t>>(), ipc::CodecError);
    b.send(numbers);
    CHECK_THROWS_AS(a.recv<std::vector<std::uint32_t>>(), ipc::CodecError);
    b.send(std::int64_t{5});
    CHECK_THROWS_AS(a.recv<std::int32_t>(), ipc::CodecError);
    b.send(std::int32_t{6});
    CHECK(a.recv<std::int32_t>() == 6);
    CHECK_FALSE(a.poll());
}

TEST_CASE("misuse of a connection is an OSError as in CPython", "[connection]") {
    auto [reader, writer] = ipc::Pipe(false);
    CHECK_THROWS_AS(reader.send(1), ipc::OSError);
    CHECK_THROWS_WITH(reader.send(1), Catch::Contains("connection is read-only"));
    CHECK_THROWS_AS(writer.recv<int>(), ipc::OSError);
    CHECK_THROWS_WITH(writer.recv<int>(), Catch::Contains("connection is write-only"));
    CHECK_THROWS_WITH(writer.poll(), Catch::Contains("connection is write-only"));
    CHECK_THROWS_WITH(writer.fileno(), Catch::Contains("connection is write-only"));
    reader.close();
    CHECK(reader.closed());
    CHECK_THROWS_AS(reader.recv<int>(), ipc::OSError);
    CHECK_THROWS_WITH(reader.recv<int>(), Catch::Contains("handle is closed"));
    CHECK_THROWS_AS(reader.poll(), ipc::OSError);
    CHECK_THROWS_AS(writer.send(1), ipc::BrokenPipeError);  // no reader is left
    auto [a, b] = ipc::Pipe();
    const auto moved_to = std::move(a);
    CHECK_THROWS_WITH(a.send(1), Catch::Contains("closed"));  // NOLINT: a moved-from end is closed
    CHECK_THROWS_WITH(a.recv<int>(), Catch::Contains("closed"));  // NOLINT
    CHECK(moved_to.writable());
}

namespace {
int send_one_on_second(Connection first, Connection second, ipc::Event go) {
    if (!go.wait(test::bound)) return 5;
    second.send(7);
    (void)first;
    return 0;
}

int reply_after_go(Connection conn, ipc::Event go) {
    if (!go.wait(test::bound)) return 5;
    conn.send(std::string("ready"));
    return 0;
}
}  // namespace

TEST_CASE("wait returns the connections and processes that are ready", "[connection]") {
    IPC_EACH_START_METHOD(method);
    auto [a_mine, a_theirs] = ipc::Pipe();
    auto [b_mine, b_theirs] = ipc::Pipe();
    ipc::Event go;
    Process child({.start_method = method}, send_one_on_second, a_theirs, b_theirs, go);
    test::Reaper reaper(child);
    child.start();
    a_theirs.close();
    b_theirs.close();
    std::vector<ipc::Waitable> objects{a_mine, b_mine, child};
    CHECK(ipc::wait(objects, std::chrono::milliseconds(20)).empty());
    go.set();
    auto ready = ipc::wait(objects, test::bound);
    REQUIRE_FALSE(ready.empty());
    CHECK(std::find(ready.begin(), ready.end(), 1u) != ready.end());  // b has a message (the rest may end)
    CHECK(test::recv_bounded<int>(b_mine) == 7);
    // The child ends: its process becomes ready, and both connections read EOF (ready too).
    CHECK(test::join_bounded(child) == 0);
    ready = ipc::wait(objects, test::bound);
    CHECK(ready == std::vector<std::size_t>{0, 1, 2});
    CHECK_THROWS_AS(test::recv_bounded<int>(a_mine), ipc::EOFError);
}

TEST_CASE("fileno becomes readable when a message arrives and not before", "[connection]") {
    IPC_EACH_START_METHOD(method);
    auto [mine, theirs] = ipc::Pipe();
    ipc::Event go;
    Process child({.start_method = method}, reply_after_go, theirs, go);
    test::Reaper reaper(child);
    child.start();
    pollfd entry{mine.fileno(), POLLIN, 0};
    CHECK(::poll(&entry, 1, 10) == 0);
    go.set();
    REQUIRE(::poll(&entry, 1, 30'000) == 1);
    CHECK(test::recv_bounded<std::string>(mine) == "ready");
    theirs.close();
    CHECK(test::join_bounded(child) == 0);
    entry.revents = 0;
    CHECK(::poll(&entry, 1, 30'000) == 1);  // now at EOF: recv would not block
    CHECK_THROWS_AS(test::recv_bounded<std::string>(mine), ipc::EOFError);
}

TEST_CASE("wait sees end of file when the other end's holder exits without closing it", "[connection]") {
    IPC_EACH_START_METHOD(method);
    auto [mine, theirs] = ipc::Pipe();
    Process holder({.start_method = method}, [](Connection) {}, theirs);
    holder.start();
    theirs.close();
    std::vector<ipc::Waitable> objects{mine};
    const auto start = std::chrono::steady_clock::now();
    CHECK(ipc::wait(objects, test::bound) == std::vector<std::size_t>{0});
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
    CHECK_THROWS_AS(test::recv_bounded<int>(mine), ipc::EOFError);
    test::join_bounded(holder);
}
