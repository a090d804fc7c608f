// tests/test_loans.cpp — zero-copy messages: a Loan written in place and sent, a MessageView read in
// place; what a dropped loan, a killed lender and a killed viewer leave behind, and the misuse errors.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "ipc/connection.hpp"
#include "ipc/listener.hpp"
#include "ipc/sharedctypes.hpp"
#include "ipc/synchronize.hpp"

using namespace std::chrono_literals;
using ipc::Connection;
using ipc::Process;
namespace test = ipc::test;

namespace {

// A 4 KiB ring lends at most 1920 bytes: messages of these sizes often meet the ring's end, where
// a loan is preceded by a padding record.
constexpr std::size_t small_ring = 4096;
constexpr std::size_t sizes[] = {0, 1, 63, 64, 700, 1000, 1900, 1500};

std::size_t size_of_message(int index) { return sizes[static_cast<std::size_t>(index) % std::size(sizes)]; }
std::byte byte_of(int message, std::size_t i) { return static_cast<std::byte>((message * 131 + i * 7) & 0xff); }

std::vector<std::byte> bytes_of(const std::string& text) {
    std::vector<std::byte> bytes(text.size());
    std::memcpy(bytes.data(), text.data(), text.size());
    return bytes;
}

/// Sends `count` messages, each written into a loan, every third one sent shorter than lent.
int lend_messages(Connection conn, int count) {
    for (int m = 0; m < count; ++m) {
        const auto size = size_of_message(m);
        const bool shorter = m % 3 == 2 && size > 0;
        auto loan = conn.loan(shorter ? std::min<std::size_t>(size + 100, 1920) : size);
        for (std::size_t i = 0; i < size; ++i) loan.data()[i] = byte_of(m, i);
        if (shorter)
            conn.send(std::move(loan), size);
        else
            conn.send(std::move(loan));
    }
    return 0;
}

/// Takes a loan, writes half of it, says so, and waits to be killed.
int lend_and_wait(Connection conn, ipc::Event lent) {
    auto loan = conn.loan(1000);
    std::memset(loan.data(), 0x77, 500);
    lent.set();
    for (;;) ::pause();
}

/// Views the first message, says whether it was "first", and waits to be killed.
int view_and_wait(Connection conn, ipc::Event viewing, ipc::Value<int> seen) {
    const auto view = conn.recv_view();
    seen.set(view.bytes().size() == 5 && std::memcmp(view.data(), "first", 5) == 0 ? 1 : 2);
    viewing.set();
    for (;;) ::pause();
}

}  // namespace

TEST_CASE("messages written into loans arrive whole and in order and are read in place", "[loans]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    {
        auto [reader, writer] = ipc::Pipe(false, small_ring);
        constexpr int count = 400;
        Process sender({.start_method = method}, lend_messages, writer, count);
        test::Reaper reaper(sender);
        sender.start();
        int wrong = 0, copied = 0;
        for (int m = 0; m < count; ++m) {
            REQUIRE(reader.poll(test::bound));
            const auto view = reader.recv_view();
            const auto size = size_of_message(m);
            if (view.size() != size) ++wrong;
            for (std::size_t i = 0; i < std::min(size, view.size()); ++i)
                if (view.data()[i] != byte_of(m, i)) {
                    ++wrong;
                    break;
                }
            if (!view.in_place()) ++copied;
        }
        CHECK(wrong == 0);
        CHECK(copied == 0);  // a loan never wraps around the ring's end
        CHECK(test::join_bounded(sender) == 0);
        CHECK_FALSE(reader.poll());
    }
}

TEST_CASE("loans and views mix with send_bytes and recv_bytes on one Pipe", "[loans]") {
    auto [reader, writer] = ipc::Pipe(false, small_ring);
    for (int m = 0; m < 50; ++m) {
        const auto size = size_of_message(m);
        std::vector<std::byte> message(size);
        for (std::size_t i = 0; i < size; ++i) message[i] = byte_of(m, i);
        if (m % 2 == 0) {
            writer.send_bytes(message);
        } else {
            auto loan = writer.loan(size);
            if (size != 0) std::memcpy(loan.data(), message.data(), size);
            writer.send(std::move(loan));
        }
        if (m % 3 == 0) {
            CHECK(reader.recv_bytes() == message);
        } else {
            const auto view = reader.recv_view();
            CHECK(std::vector<std::byte>(view.bytes().begin(), view.bytes().end()) == message);
        }
    }
    // A message sent by send_bytes across the ring's end comes as a copy, held the same way.
    bool saw_copy = false;
    for (int m = 0; m < 8 && !saw_copy; ++m) {
        writer.send_bytes(std::vector<std::byte>(1500, std::byte{9}));
        const auto view = reader.recv_view();
        CHECK(view.size() == 1500);
        CHECK(view.data()[1499] == std::byte{9});
        saw_copy = !view.in_place();
    }
    CHECK(saw_copy);
}

TEST_CASE("a loan dropped unsent publishes nothing and its room comes back", "[loans]") {
    auto [reader, writer] = ipc::Pipe(false, small_ring);
    for (int i = 0; i < 20; ++i) {  // more than the ring holds: each dropped loan gave its room back
        auto loan = writer.loan(1900);
        std::memset(loan.data(), 0x55, loan.size());
    }
    CHECK_FALSE(reader.poll());
    writer.send_bytes(bytes_of("after"));
    CHECK(reader.recv_bytes() == bytes_of("after"));
    CHECK_FALSE(reader.poll());
}

TEST_CASE("misused loans and views are ValueErrors that say what to do", "[loans]") {
    auto [reader, writer] = ipc::Pipe(false, small_ring);
    SECTION("a loan larger than half the ring") {
        const auto message = test::error_of<ipc::ValueError>([&] { (void)writer.loan(small_ring); });
        CHECK_THAT(message, Catch::Contains("4096 bytes is larger than the 1920"));
        CHECK_THAT(message, Catch::Contains("at least twice the loan"));
    }
    SECTION("a send or a second loan while this thread's loan is open") {
        auto loan = writer.loan(10);
        CHECK_THAT(test::error_of<ipc::ValueError>([&] { writer.send_bytes(bytes_of("x")); }),
                   Catch::Contains("this thread has a loan open"));
        CHECK_THROWS_AS(writer.send(std::string("x")), ipc::ValueError);
        CHECK_THROWS_AS((void)writer.loan(10), ipc::ValueError);
        std::memcpy(loan.data(), "0123456789", 10);
        writer.send(std::move(loan));
        CHECK(reader.recv_bytes() == bytes_of("0123456789"));
    }
    SECTION("a loan sent twice, sent longer than lent, or sent on another end") {
        auto loan = writer.loan(4);
        CHECK_THAT(test::error_of<ipc::ValueError>([&] { writer.send(std::move(loan), 5); }),
                   Catch::Contains("5 bytes, more than the loan's 4"));
        // That send ended the loan: the ring is free again, and the moved-from loan is empty.
        CHECK_THAT(test::error_of<ipc::ValueError>([&] { writer.send(std::move(loan)); }),  // NOLINT: moved-from on purpose
                   Catch::Contains("empty"));
        auto [other_reader, other_writer] = ipc::Pipe(false, small_ring);
        auto foreign = other_writer.loan(3);
        CHECK_THAT(test::error_of<ipc::ValueError>([&] { writer.send(std::move(foreign)); }),
                   Catch::Contains("of another Connection"));
        CHECK_FALSE(other_reader.poll());
        writer.send_bytes(bytes_of("ok"));
        CHECK(reader.recv_bytes() == bytes_of("ok"));
    }
    SECTION("a receive while this thread holds a view") {
        writer.send_bytes(bytes_of("one"));
        writer.send_bytes(bytes_of("two"));
        auto view = reader.recv_view();
        CHECK(reader.poll());
        CHECK_THAT(test::error_of<ipc::ValueError>([&] { (void)reader.recv_bytes(); }),
                   Catch::Contains("holds a view"));
        CHECK(std::string(reinterpret_cast<const char*>(view.data()), view.size()) == "one");
        view.release();
        CHECK(view.bytes().empty());
        CHECK(reader.recv_bytes() == bytes_of("two"));
    }
    SECTION("a view larger than maxlength") {
        writer.send_bytes(std::vector<std::byte>(100));
        CHECK_THROWS_AS((void)reader.recv_view(10), ipc::BufferTooShort);
        CHECK(reader.recv_view(100).size() == 100);
    }
}

TEST_CASE("another thread's send waits for an open loan and goes after it", "[loans]") {
    auto [reader, writer] = ipc::Pipe(false, small_ring);
    auto loan = writer.loan(5);
    std::thread other([writer = writer]() mutable { writer.send_bytes(bytes_of("second")); });
    std::memcpy(loan.data(), "first", 5);
    writer.send(std::move(loan));
    other.join();
    REQUIRE(reader.poll(test::bound));
    CHECK(reader.recv_bytes() == bytes_of("first"));
    REQUIRE(reader.poll(test::bound));
    CHECK(reader.recv_bytes() == bytes_of("second"));
}

TEST_CASE("a sender killed with a loan open leaves nothing and the send end lives on", "[loans]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    {
        auto [reader, writer] = ipc::Pipe(false, small_ring);
        ipc::Event lent;
        Process lender({.start_method = method}, lend_and_wait, writer, lent);
        test::Reaper reaper(lender);
        lender.start();
        REQUIRE(lent.wait(test::bound));
        lender.kill();
        REQUIRE(test::join_bounded(lender) == -SIGKILL);
        CHECK_FALSE(reader.poll());
        // This process holds the send end too: it takes the ring over from the dead lender.
        writer.send_bytes(bytes_of("after"));
        REQUIRE(reader.poll(test::bound));
        CHECK(reader.recv_bytes() == bytes_of("after"));
        CHECK_FALSE(reader.poll());
        auto loan = writer.loan(3);
        std::memcpy(loan.data(), "end", 3);
        writer.send(std::move(loan));
        CHECK(reader.recv_bytes() == bytes_of("end"));
    }
}

TEST_CASE("a receiver killed holding a view had its message: the next receive gets the one after", "[loans]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    {
        auto [reader, writer] = ipc::Pipe(false, small_ring);
        writer.send_bytes(bytes_of("first"));
        writer.send_bytes(bytes_of("second"));
        ipc::Event viewing;
        ipc::Value<int> seen(0);
        Process viewer({.start_method = method}, view_and_wait, reader, viewing, seen);
        test::Reaper reaper(viewer);
        viewer.start();
        REQUIRE(viewing.wait(test::bound));
        CHECK(seen.value() == 1);
        viewer.kill();
        REQUIRE(test::join_bounded(viewer) == -SIGKILL);
        REQUIRE(reader.poll(test::bound));
        CHECK(reader.recv_bytes() == bytes_of("second"));
        CHECK_FALSE(reader.poll());
    }
}

TEST_CASE("a TCP Connection lends and views copies with the same calls", "[loans][tcp]") {
    ipc::Listener listener(ipc::TcpAddress{"127.0.0.1", 0});
    std::optional<Connection> client;
    std::thread connect([&] { client.emplace(ipc::Client(listener.address(), {.timeout = test::bound})); });
    auto server = listener.accept();
    connect.join();
    REQUIRE(client);
    auto loan = client->loan(5);
    std::memcpy(loan.data(), "hello", 5);
    client->send(std::move(loan));
    const auto view = server.recv_view();
    CHECK_FALSE(view.in_place());
    CHECK(std::string(reinterpret_cast<const char*>(view.data()), view.size()) == "hello");
}
