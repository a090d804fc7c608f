// Listener and Client over TCP, on loopback only (127.0.0.1, and ::1 when the machine has it), under
// fork and spawn: typed values and MiB messages both ways over the socket, authkeys, hostile peers
// (huge frame lengths, garbage, a close mid-frame), SIGKILL as EOFError, poll timeouts, BufferTooShort,
// ipc::wait and Boost.Asio, the bound address and port, family() and last_accepted().
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <utility>  // before Boost 1.74's awaitable.hpp, which uses std::exchange without it

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstring>
#include <functional>
#include <numeric>
#include <thread>

#include "harness.hpp"
#include "ipc/asio.hpp"
#include "ipc/listener.hpp"

using namespace std::chrono_literals;
using ipc::Connection;
using ipc::Process;
using ipc::TcpAddress;
namespace test = ipc::test;
using Catch::Matchers::Contains;
using ipc::test::Socket;

namespace {

using Key = std::optional<std::string>;

/// True when this machine can bind a TCP socket to ::1 (a container may have no IPv6).
bool has_ipv6_loopback() {
    const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in6 where{};
    where.sin6_family = AF_INET6;
    where.sin6_addr = in6addr_loopback;
    const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&where), sizeof where) == 0;
    ::close(fd);
    return ok;
}

std::vector<std::byte> pattern(std::size_t size, unsigned seed) {
    std::vector<std::byte> bytes(size);
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::byte>((i * 131 + seed) & 0xff);
    return bytes;
}

Connection connect(const std::string& address, Key key = {}) {
    return ipc::Client(address, {.authkey = std::move(key), .timeout = test::bound});
}

/// The client's side of a conversation: typed values both ways, a large message echoed, then EOF.
/// 0 when it saw it all and then EOF; 2 on AuthenticationError; 1 otherwise.
int tcp_client(std::string address, Key key) {
    try {
        auto conn = connect(address, std::move(key));
        const auto greeting = conn.recv<std::string>();
        conn.send(greeting + " back");
        conn.send(std::vector<int>{1, 2, 3});
        conn.send(3.5);
        const auto big = conn.recv_bytes();
        conn.send_bytes(big);
        try {
            (void)conn.recv<int>();
            return 1;
        } catch (const ipc::EOFError&) {
            return 0;
        }
    } catch (const ipc::AuthenticationError&) {
        return 2;
    }
}

/// The Listener's side of tcp_client.
void serve(Connection conn) {
    conn.send(std::string("hello"));
    CHECK(test::recv_bounded<std::string>(conn) == "hello back");
    CHECK(test::recv_bounded<std::vector<int>>(conn) == std::vector<int>{1, 2, 3});
    CHECK(test::recv_bounded<double>(conn) == 3.5);
    const auto big = pattern(6u << 20, 7);  // 6 MiB: many socket buffers' worth
    conn.send_bytes(big);
    REQUIRE(conn.poll(test::bound));
    CHECK(conn.recv_bytes() == big);
    conn.close();
}

/// Connects, says "ready", then waits to be killed.
void client_says_ready(std::string address) {
    auto conn = connect(address);
    conn.send(std::string("ready"));
    ::pause();
}

/// A raw TCP socket connected to the Listener at 127.0.0.1:`port`, which speaks no ipc by itself.
Socket raw_connect(std::uint16_t port) {
    Socket fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    sockaddr_in where{};
    where.sin_family = AF_INET;
    where.sin_port = htons(port);
    where.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&where), sizeof where) == 0);
    return fd;
}

void send_raw(int fd, const std::vector<std::uint8_t>& bytes) {
    REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

/// A handshake frame (net/handshake.cpp): 32-bit length, type, payload.
std::vector<std::uint8_t> handshake_frame(std::uint8_t type) { return {1, 0, 0, 0, type}; }

/// What a raw client without a key says to pass a Listener without one: "ready" to its greeting,
/// "opened" to its "connection" (the Listener reads these in turn, so they may go at once).
std::vector<std::uint8_t> raw_handshake() {
    auto bytes = handshake_frame(2);  // ready
    const auto opened = handshake_frame(9);
    bytes.insert(bytes.end(), opened.begin(), opened.end());
    return bytes;
}

/// A Connection frame's header: 8-byte little-endian length.
std::vector<std::uint8_t> frame_header(std::uint64_t length) {
    std::vector<std::uint8_t> bytes(8);
    for (auto& byte : bytes) {
        byte = static_cast<std::uint8_t>(length & 0xff);
        length >>= 8;
    }
    return bytes;
}

int echo_once(Connection conn) {
    conn.send(conn.recv<std::string>() + " echoed");
    return 0;
}

/// Both ends of one TCP connection in this process: the client's handshake needs the Listener's
/// accept(), so the client connects on a thread.
std::pair<Connection, Connection> connected_here(ipc::Listener& listener) {
    std::optional<Connection> client;
    std::exception_ptr failure;
    std::thread connecting([&] {
        try {
            client = connect(listener.address());
        } catch (...) {
            failure = std::current_exception();
        }
    });
    struct Join {  // also when accept() throws: the client then fails within its own bound
        std::thread& thread;
        ~Join() {
            if (thread.joinable()) thread.join();
        }
    } join{connecting};
    auto server = listener.accept(test::bound);
    connecting.join();
    if (failure) std::rethrow_exception(failure);
    return {std::move(server), std::move(*client)};
}

}  // namespace

TEST_CASE("a TCP client in a child exchanges values and MiB messages with the Listener", "[tcp]") {
    IPC_EACH_START_METHOD(method);
    const bool v6 = GENERATE(false, true);
    if (v6 && !has_ipv6_loopback()) {
        WARN("::1 cannot be bound here: the IPv6 case is skipped");
        return;
    }
    const Key key = GENERATE(Key(), Key("secret"));
    test::LeakCheck leaks;
    {
        ipc::Listener listener(TcpAddress{v6 ? "::1" : "127.0.0.1", 0}, {.authkey = key});
        REQUIRE(listener.tcp_address());
        const auto port = listener.tcp_address()->port;
        CHECK(port != 0);
        CHECK(listener.address() == (v6 ? "tcp://[::1]:" : "tcp://127.0.0.1:") + std::to_string(port));
        CHECK(listener.family() == (v6 ? "AF_INET6" : "AF_INET"));
        CHECK_FALSE(listener.last_accepted());
        Process client({.start_method = method}, tcp_client, listener.address(), key);
        test::Reaper reaper(client);
        client.start();
        serve(listener.accept(test::bound));
        REQUIRE(listener.last_accepted());
        CHECK_THAT(listener.last_accepted()->address, Contains(v6 ? "tcp://[::1]:" : "tcp://127.0.0.1:"));
        CHECK(listener.last_accepted()->pid == 0);  // no credentials over TCP
        CHECK(test::join_bounded(client) == 0);
    }
}

TEST_CASE("the string form tcp://host:port and a Unix Listener's family", "[tcp]") {
    test::LeakCheck leaks;
    ipc::Listener listener("tcp://127.0.0.1:0");
    CHECK(listener.family() == "AF_INET");
    CHECK(listener.address().rfind("tcp://127.0.0.1:", 0) == 0);
    CHECK(ipc::to_string(*listener.tcp_address()) == listener.address());
    ipc::Listener unix_listener;
    CHECK(unix_listener.family() == "AF_UNIX");
    CHECK_FALSE(unix_listener.tcp_address());
    CHECK_THROWS_AS(ipc::Listener("tcp://127.0.0.1"), ipc::ValueError);
    CHECK_THROWS_AS(ipc::Listener("tcp://::1:0"), ipc::ValueError);
    CHECK_THROWS_AS(ipc::Listener("tcp://127.0.0.1:70000"), ipc::ValueError);
}

TEST_CASE("authkeys must match over TCP and the Listener serves the next client", "[tcp]") {
    IPC_EACH_START_METHOD(method);
    struct Row {
        Key listener, client;
    };
    const auto row = GENERATE(Row{"secret", "wrong"}, Row{"secret", {}}, Row{{}, "secret"});
    test::LeakCheck leaks;
    ipc::Listener listener(TcpAddress{"127.0.0.1", 0}, {.authkey = row.listener});
    {
        Process client({.start_method = method}, tcp_client, listener.address(), row.client);
        test::Reaper reaper(client);
        client.start();
        CHECK_THROWS_AS(listener.accept(test::bound), ipc::AuthenticationError);
        CHECK(test::join_bounded(client) == 2);
    }
    Process next({.start_method = method}, tcp_client, listener.address(), row.listener);
    test::Reaper reaper(next);
    next.start();
    serve(listener.accept(test::bound));
    CHECK(test::join_bounded(next) == 0);
}

TEST_CASE("a hostile TCP peer gets a clear error and no huge allocation", "[tcp]") {
    test::LeakCheck leaks;
    ipc::Listener listener(TcpAddress{"127.0.0.1", 0}, {.max_message = 1 << 20});
    const auto port = listener.tcp_address()->port;

    SECTION("garbage instead of the handshake") {
        auto raw = raw_connect(port);
        const std::string request = "GET / HTTP/1.1\r\n\r\n";
        send_raw(raw.get(), {request.begin(), request.end()});
        CHECK_THROWS_AS(listener.accept(test::bound), ipc::AuthenticationError);
    }
    SECTION("a frame length of 2^62 after the handshake") {
        auto raw = raw_connect(port);
        auto bytes = raw_handshake();
        const auto header = frame_header(std::uint64_t{1} << 62);
        bytes.insert(bytes.end(), header.begin(), header.end());
        send_raw(raw.get(), bytes);
        auto conn = listener.accept(test::bound);
        REQUIRE(conn.poll(test::bound));  // recv would not block: it fails
        CHECK_THROWS_WITH(conn.recv_bytes(), Contains("4611686018427387904 bytes") &&
                                                 Contains("max_message"));
        CHECK_THROWS_AS(conn.recv_bytes(), ipc::Error);  // and stays failed
    }
    SECTION("a frame just over max_message") {
        auto raw = raw_connect(port);
        auto bytes = raw_handshake();
        const auto header = frame_header((1 << 20) + 1);
        bytes.insert(bytes.end(), header.begin(), header.end());
        send_raw(raw.get(), bytes);
        auto conn = listener.accept(test::bound);
        CHECK_THROWS_WITH(test::recv_bounded<int>(conn), Contains("1048577 bytes"));
    }
    SECTION("a close in the middle of a frame") {
        auto raw = raw_connect(port);
        auto bytes = raw_handshake();
        const auto header = frame_header(100);
        bytes.insert(bytes.end(), header.begin(), header.end());
        bytes.insert(bytes.end(), 10, 0x55);
        send_raw(raw.get(), bytes);
        auto conn = listener.accept(test::bound);
        CHECK_FALSE(conn.poll(20ms));  // 10 of 100 bytes: not a message yet
        raw.reset();
        REQUIRE(conn.poll(test::bound));
        CHECK_THROWS_WITH(conn.recv_bytes(), Contains("in the middle of a message"));
        CHECK_THROWS_AS(conn.recv_bytes(), ipc::EOFError);
    }
}

TEST_CASE("a TCP peer killed mid-conversation is EOFError and then BrokenPipeError", "[tcp]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Listener listener(TcpAddress{"127.0.0.1", 0});
    Process client({.start_method = method}, client_says_ready, listener.address());
    test::Reaper reaper(client);
    client.start();
    auto conn = listener.accept(test::bound);
    REQUIRE(test::recv_bounded<std::string>(conn) == "ready");
    conn.send(std::string("unread"));  // left in the killed peer's buffer: it resets the connection
    CHECK_FALSE(conn.poll(20ms));
    client.kill();
    CHECK(test::join_bounded(client) == -SIGKILL);
    CHECK_THROWS_AS(test::recv_bounded<int>(conn), ipc::EOFError);
    CHECK(test::eventually([&] {
        try {
            conn.send(1);
            return false;
        } catch (const ipc::BrokenPipeError&) {
            return true;
        }
    }));
}

TEST_CASE("TCP poll timeouts BufferTooShort and ipc::wait in one process", "[tcp]") {
    test::LeakCheck leaks;
    ipc::Listener listener(TcpAddress{"127.0.0.1", 0});
    auto [server, client] = connected_here(listener);

    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(server.poll(50ms));
    CHECK(std::chrono::steady_clock::now() - start >= 50ms);
    CHECK_FALSE(server.poll());
    CHECK(server.readable());
    CHECK(server.writable());
    CHECK(server.fileno() >= 0);

    std::vector<ipc::Waitable> objects{server};
    CHECK(ipc::wait(objects, 10ms).empty());
    client.send_bytes(pattern(1000, 1));
    REQUIRE(ipc::wait(objects, test::bound) == std::vector<std::size_t>{0});
    REQUIRE(server.poll());
    try {
        (void)server.recv_bytes(999);
        FAIL("no BufferTooShort");
    } catch (const ipc::BufferTooShort& error) {
        CHECK(error.size() == 1000);
    }
    std::vector<std::byte> small(10);
    CHECK_THROWS_AS(server.recv_bytes_into(small), ipc::BufferTooShort);
    std::vector<std::byte> room(1010);
    CHECK(server.recv_bytes_into(room, 10) == 1000);  // the message stayed
    CHECK(std::equal(room.begin() + 10, room.end(), pattern(1000, 1).begin()));

    client.send_bytes({});  // an empty message is a message
    REQUIRE(server.poll(test::bound));
    CHECK(server.recv_bytes().empty());

    client.close();
    CHECK(client.closed());
    REQUIRE(server.poll(test::bound));
    CHECK_THROWS_AS(server.recv<int>(), ipc::EOFError);
    server.close();
    CHECK_THROWS_AS(server.recv<int>(), ipc::OSError);
}

TEST_CASE("closing a TCP Connection wakes a thread that waits in recv on it", "[tcp]") {
    test::LeakCheck leaks;
    ipc::Listener listener(TcpAddress{"127.0.0.1", 0});
    auto [server, client] = connected_here(listener);
    std::atomic<int> outcome{0};  // 1: EOFError or OSError, 2: anything else
    std::thread waiting([&, conn = server]() mutable {
        try {
            (void)conn.recv<int>();
            outcome = 2;
        } catch (const ipc::EOFError&) {
            outcome = 1;
        } catch (const ipc::OSError&) {
            outcome = 1;
        } catch (...) {
            outcome = 2;
        }
    });
    // Closing before the thread waits is fine as well: then its recv finds the end closed.
    server.close();
    waiting.join();
    CHECK(outcome == 1);
    REQUIRE(client.poll(test::bound));  // the peer sees end of file
    CHECK_THROWS_AS(client.recv<int>(), ipc::EOFError);
}

TEST_CASE("a TCP Connection passed to a child carries on there", "[tcp]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Listener listener(TcpAddress{"127.0.0.1", 0});
    auto [server, client] = connected_here(listener);
    Process child({.start_method = method}, echo_once, client);
    test::Reaper reaper(child);
    child.start();
    server.send(std::string("hi"));
    CHECK(test::recv_bounded<std::string>(server) == "hi echoed");
    CHECK(test::join_bounded(child) == 0);
}

TEST_CASE("nothing listening on a TCP port is ConnectionRefusedError", "[tcp]") {
    test::LeakCheck leaks;
    std::string address;
    {
        ipc::Listener listener(TcpAddress{"127.0.0.1", 0});
        address = listener.address();
    }
    CHECK_THROWS_AS(connect(address), ipc::ConnectionRefusedError);
}

TEST_CASE("Asio async_recv and async_send over TCP", "[tcp][asio]") {
    test::LeakCheck leaks;
    ipc::Listener listener(TcpAddress{"127.0.0.1", 0});
    auto [server, client] = connected_here(listener);

    boost::asio::io_context io;
    ipc::asio::AsyncConnection async(io, server);
    std::vector<int> received;
    std::exception_ptr end;
    std::function<void()> receive = [&] {
        async.async_recv<int>([&](std::exception_ptr error, int value) {
            if (error) {
                end = error;
                return;
            }
            received.push_back(value);
            receive();
        });
    };
    bool sent = false;
    async.async_send(std::string("from asio"), [&](std::exception_ptr error) { sent = !error; });
    while (!sent && io.run_one_for(test::bound) > 0) {
    }
    CHECK(sent);
    CHECK(test::recv_bounded<std::string>(client) == "from asio");
    receive();
    for (int i = 0; i < 100; ++i) client.send(i);
    client.close();
    io.restart();
    io.run_for(test::bound);
    std::vector<int> expected(100);
    std::iota(expected.begin(), expected.end(), 0);
    CHECK(received == expected);
    REQUIRE(end);
    CHECK_THROWS_AS(std::rethrow_exception(end), ipc::EOFError);
}
