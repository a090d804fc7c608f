// Listener and Client under fork and spawn: a client in a child meets the Listener by path or
// abstract name, objects flow both ways, EOF both ways (close and SIGKILL), authkeys right, wrong or
// missing on either side, and a Listener that outlives garbage, silent and half-finished handshakes.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "harness.hpp"
#include "ipc/listener.hpp"
#include "ipc/synchronize.hpp"

using namespace std::chrono_literals;
using ipc::Connection;
using ipc::Process;
namespace test = ipc::test;
using Catch::Matchers::Contains;
using ipc::test::Socket;

namespace {

using Key = std::optional<std::string>;

enum class Spelling { path, at, nul };

/// A fresh address of each spelling: a socket file in `dir`, "@name", or Python's "\0name".
std::string address_for(Spelling spelling, const test::TempDir& dir) {
    const auto name = test::unique_name("listener");
    switch (spelling) {
        case Spelling::path: return dir.file(name + ".sock");
        case Spelling::at: return "@" + name;
        case Spelling::nul: return std::string(1, '\0') + name;
    }
    return {};
}

Connection connect(const std::string& address, Key key = {}) {
    return ipc::Client(address, {.authkey = std::move(key), .timeout = test::bound});
}

/// 0 when it saw the whole conversation and then EOF; 2 on AuthenticationError; 1 otherwise.
int client_round_trip(std::string address, Key key) {
    try {
        auto conn = connect(address, std::move(key));
        const auto greeting = conn.recv<std::string>();
        conn.send(greeting + " back");
        conn.send(std::vector<int>{1, 2, 3});
        try {
            (void)conn.recv<int>();
            return 1;
        } catch (const ipc::EOFError&) {
            return 0;  // the Listener's side closed
        }
    } catch (const ipc::AuthenticationError&) {
        return 2;
    }
}

/// The Listener's part of client_round_trip.
void serve_round_trip(Connection conn) {
    conn.send(std::string("hello"));
    CHECK(test::recv_bounded<std::string>(conn) == "hello back");
    CHECK(test::recv_bounded<std::vector<int>>(conn) == std::vector<int>{1, 2, 3});
    conn.close();
}

/// After a client that failed: the same Listener still serves a client with `key`.
void serve_next_good_client(ipc::Listener& listener, ipc::StartMethod method, Key key) {
    Process next({.start_method = method}, client_round_trip, listener.address(), std::move(key));
    test::Reaper reaper(next);
    next.start();
    serve_round_trip(listener.accept(test::bound));
    CHECK(test::join_bounded(next) == 0);
}

/// Connects and says "ready"; then waits to be killed, or returns without closing (leaving the
/// process lets go of the end).
void client_says_ready(std::string address, bool hang) {
    auto conn = connect(address);
    conn.send(std::string("ready"));
    if (hang) ::pause();
}

void listener_hangs(std::string address, ipc::Event listening) {
    ipc::Listener listener(address);
    listening.set();
    auto conn = listener.accept(test::bound);
    conn.send(std::string("hi"));
    ::pause();
}

/// The anonymous segments `pid` created that are still in /dev/shm (their names are "ipc_<pid>_…").
std::vector<std::string> segments_created_by(pid_t pid) {
    std::vector<std::string> found;
    const auto prefix = "ipc_" + std::to_string(pid) + "_";
    for (const auto& name : test::directory_entries("/dev/shm"))
        if (name.rfind(prefix, 0) == 0) found.push_back(name);
    return found;
}

/// The kernel's form of an address: "@name" abstract, anything else a path.
std::pair<sockaddr_un, socklen_t> raw_address(const std::string& address) {
    sockaddr_un where{};
    where.sun_family = AF_UNIX;
    const bool abstract = address[0] == '@';
    std::memcpy(where.sun_path, address.data(), address.size());
    if (abstract) where.sun_path[0] = '\0';
    return {where, static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + (abstract ? 0 : 1))};
}

/// A raw AF_UNIX stream socket connected to `address`, which does not speak ipc.
Socket raw_connect(const std::string& address) {
    Socket fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    const auto [where, length] = raw_address(address);
    REQUIRE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&where), length) == 0);
    return fd;
}

/// A raw listening socket at `address`, for a fake Listener.
Socket raw_listen(const std::string& address) {
    Socket fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    const auto [where, length] = raw_address(address);
    REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&where), length) == 0);
    REQUIRE(::listen(fd.get(), 1) == 0);
    return fd;
}

void send_raw(int fd, const std::vector<std::uint8_t>& bytes) {
    REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

/// A handshake frame: 32-bit length, type, payload.
std::vector<std::uint8_t> frame(std::uint8_t type, std::vector<std::uint8_t> payload = {}) {
    const auto length = static_cast<std::uint32_t>(payload.size() + 1);
    std::vector<std::uint8_t> out(sizeof length);
    std::memcpy(out.data(), &length, sizeof length);
    out.push_back(type);
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

/// Waits (bounded) until the peer closes `fd`, discarding what it says.
void drain_until_closed(int fd) {
    char sink[256];
    for (;;) {
        pollfd entry{fd, POLLIN, 0};
        if (::poll(&entry, 1, 30'000) != 1) return;
        if (::recv(fd, sink, sizeof sink, 0) <= 0) return;
    }
}

/// A fake Listener's one accept, in a thread: sends the client `bytes`, then hangs up at once or
/// (`hang_up` false) reads until the client closes. Nothing here may fail the test: Catch2's
/// assertions are for the main thread.
std::thread serve_once(const Socket& fake, std::vector<std::uint8_t> bytes, bool hang_up) {
    return std::thread([fd = fake.get(), bytes = std::move(bytes), hang_up] {
        pollfd entry{fd, POLLIN, 0};
        if (::poll(&entry, 1, 30'000) != 1) return;
        Socket peer(::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC));
        if (!bytes.empty()) (void)!::send(peer.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (!hang_up) drain_until_closed(peer.get());
    });
}

}  // namespace

TEST_CASE("a client in a child connects and objects flow both ways", "[listener]") {
    IPC_EACH_START_METHOD(method);
    const auto spelling = GENERATE(Spelling::path, Spelling::at, Spelling::nul);
    test::LeakCheck leaks;
    test::TempDir dir;
    const auto address = address_for(spelling, dir);
    {
        ipc::Listener listener(address);
        CHECK(listener.address() == address);
        CHECK_FALSE(listener.last_accepted());
        Process client({.start_method = method}, client_round_trip, address, Key());
        test::Reaper reaper(client);
        client.start();
        serve_round_trip(listener.accept(test::bound));
        REQUIRE(listener.last_accepted());
        CHECK(listener.last_accepted()->pid == client.pid());
        CHECK(listener.last_accepted()->uid == ::getuid());
        CHECK(test::join_bounded(client) == 0);
        if (spelling == Spelling::path) CHECK(std::filesystem::exists(address));
    }
    // As in Python, the Listener removes its socket file.
    CHECK_FALSE(std::filesystem::exists(address));
}

TEST_CASE("the Listener reads EOFError when the client exits without closing or is SIGKILLed", "[listener]") {
    IPC_EACH_START_METHOD(method);
    const bool killed = GENERATE(false, true);
    INFO((killed ? "the client is killed" : "the client returns"));
    test::LeakCheck leaks;
    ipc::Listener listener;
    Process client({.start_method = method}, client_says_ready, listener.address(), killed);
    test::Reaper reaper(client);
    client.start();
    auto conn = listener.accept(test::bound);
    REQUIRE(test::recv_bounded<std::string>(conn) == "ready");
    if (killed) {
        CHECK_FALSE(conn.poll(20ms));
        client.kill();
        CHECK(test::join_bounded(client) == -SIGKILL);
    } else {
        CHECK(test::join_bounded(client) == 0);
    }
    CHECK_THROWS_AS(test::recv_bounded<int>(conn), ipc::EOFError);
    CHECK_THROWS_AS(conn.send(1), ipc::BrokenPipeError);
}

TEST_CASE("the client reads EOFError when the Listener's process is SIGKILLed", "[listener]") {
    IPC_EACH_START_METHOD(method);
    const auto address = "@" + test::unique_name("listener");
    ipc::Event listening;
    Process server({.start_method = method}, listener_hangs, address, listening);
    test::Reaper reaper(server);
    server.start();
    REQUIRE(listening.wait(test::bound));
    const pid_t server_pid = *server.pid();
    {
        auto conn = connect(address);
        REQUIRE(test::recv_bounded<std::string>(conn) == "hi");
        CHECK(segments_created_by(server_pid).size() == 1);  // the Pipe
        server.kill();
        CHECK(test::join_bounded(server) == -SIGKILL);
        CHECK_THROWS_AS(test::recv_bounded<int>(conn), ipc::EOFError);
    }
    // The killed Listener created the Pipe. A spawned (or forkserver) one had its own resource
    // tracker, which removes the segment now; a forked one shares this process's tracker, which
    // removes it when this test process ends (the suite's last test checks that /dev/shm is clean).
    if (method != ipc::StartMethod::fork)
        CHECK(test::eventually([&] { return segments_created_by(server_pid).empty(); }));
}

TEST_CASE("authkeys must match on both sides and the Listener serves the next client", "[listener]") {
    IPC_EACH_START_METHOD(method);
    struct Row {
        Key listener, client;
        bool connects;
    };
    const auto row = GENERATE(Row{"secret", "secret", true}, Row{"secret", "wrong", false}, Row{"secret", {}, false},
                              Row{{}, "secret", false}, Row{{}, {}, true});
    INFO("listener key " << row.listener.value_or("(none)") << ", client key " << row.client.value_or("(none)"));
    test::LeakCheck leaks;
    ipc::Listener listener("@" + test::unique_name("listener"), 1, row.listener);
    Process client({.start_method = method}, client_round_trip, listener.address(), row.client);
    test::Reaper reaper(client);
    client.start();
    if (row.connects) {
        serve_round_trip(listener.accept(test::bound));
        CHECK(test::join_bounded(client) == 0);
    } else {
        CHECK_THROWS_AS(listener.accept(test::bound), ipc::AuthenticationError);
        CHECK(listener.last_accepted()->pid == client.pid());
        CHECK(test::join_bounded(client) == 2);  // the client was told too
    }
    // The same Listener goes on with a client that has the right key.
    serve_next_good_client(listener, method, row.listener);
}

TEST_CASE("a client that sends garbage or too little or nothing fails accept in time", "[listener]") {
    IPC_EACH_START_METHOD(method);
    struct Row {
        const char* what;
        std::vector<std::uint8_t> bytes;
        bool then_close;
        int expected;  // 0 AuthenticationError, 1 TimeoutError, 2 EOFError
    };
    const std::string request = "GET / HTTP/1.1\r\n\r\n";
    const std::vector<std::uint8_t> http(request.begin(), request.end());
    auto truncated = frame(5, std::vector<std::uint8_t>(32, 7));  // a digest cut short
    truncated.resize(8);
    const auto row = GENERATE_COPY(
        Row{"an HTTP request (a huge length)", http, false, 0},
        Row{"an oversized length", {0xff, 0xff, 0xff, 0xff}, false, 0},
        Row{"an unknown message type", frame(99), false, 0}, Row{"a zero length", {0, 0, 0, 0}, false, 0},
        Row{"a truncated message, then silence", truncated, false, 1}, Row{"nothing at all", {}, false, 1},
        Row{"a truncated message, then close", truncated, true, 2}, Row{"a close at once", {}, true, 2});
    INFO("the client sends " << row.what);
    test::LeakCheck leaks;
    ipc::Listener listener("@" + test::unique_name("listener"),
                           {.authkey = "secret", .handshake_timeout = std::chrono::milliseconds(300)});
    auto raw = raw_connect(listener.address());
    if (!row.bytes.empty()) send_raw(raw.get(), row.bytes);
    if (row.then_close) raw.reset();
    const auto start = std::chrono::steady_clock::now();
    switch (row.expected) {
        case 0: CHECK_THROWS_AS(listener.accept(test::bound), ipc::AuthenticationError); break;
        case 1: CHECK_THROWS_AS(listener.accept(test::bound), ipc::TimeoutError); break;
        default: CHECK_THROWS_AS(listener.accept(test::bound), ipc::EOFError); break;
    }
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    raw.reset();
    serve_next_good_client(listener, method, Key("secret"));
}

namespace {
/// client_round_trip, by a client that waits at most `wait_ms` for the Listener's greeting: 3 when
/// it did not come in time.
int client_round_trip_within(std::string address, Key key, int wait_ms) {
    try {
        auto conn = ipc::Client(address, {.authkey = std::move(key), .timeout = std::chrono::milliseconds(wait_ms)});
        conn.send(conn.recv<std::string>() + " back");
        conn.send(std::vector<int>{1, 2, 3});
        return 0;
    } catch (const ipc::TimeoutError&) {
        return 3;
    }
}
}  // namespace

TEST_CASE("clients that connect and say nothing delay no other client's handshake", "[listener]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Listener listener("@" + test::unique_name("listener"),
                           {.backlog = 32, .authkey = "secret", .handshake_timeout = std::chrono::seconds(5)});
    std::vector<Socket> silent;
    for (int i = 0; i < 18; ++i) silent.push_back(raw_connect(listener.address()));
    // One after the other, the silent clients would cost it 18 handshake times before its greeting.
    Process good({.start_method = method}, client_round_trip_within, listener.address(), Key("secret"), 4000);
    test::Reaper reaper(good);
    good.start();
    // accept() returns handshakes as they end: the good client's first, then each silent one's timeout.
    serve_round_trip(listener.accept(test::bound));
    CHECK(test::join_bounded(good) == 0);
    for (int i = 0; i < 18; ++i) CHECK_THROWS_AS(listener.accept(test::bound), ipc::TimeoutError);
}

TEST_CASE("a Client facing a fake Listener fails with an ipc error in time", "[listener]") {
    struct Row {
        const char* what;
        std::vector<std::uint8_t> bytes;
        int expected;  // 0 AuthenticationError, 1 TimeoutError, 2 EOFError
    };
    // A valid greeting without authentication: magic, version 1, no challenge.
    const auto hello = frame(1, {'i', 'p', 'c', '-', 'l', 's', 't', 'n', 1, 0, 0, 0, 0});
    const auto row = GENERATE_COPY(Row{"garbage", {'g', 'a', 'r', 'b', 'a', 'g', 'e', '!'}, 0},
                                   Row{"another magic", frame(1, std::vector<std::uint8_t>(13, 'x')), 0},
                                   Row{"a greeting, then silence", hello, 1}, Row{"nothing, then close", {}, 2});
    INFO("the fake Listener sends " << row.what);
    test::LeakCheck leaks;
    const auto address = "@" + test::unique_name("fake");
    auto fake = raw_listen(address);
    auto server = serve_once(fake, row.bytes, row.expected == 2);
    const auto start = std::chrono::steady_clock::now();
    const ipc::ClientOptions options{.timeout = test::bound, .handshake_timeout = std::chrono::milliseconds(300)};
    switch (row.expected) {
        case 0: CHECK_THROWS_AS(ipc::Client(address, options), ipc::AuthenticationError); break;
        case 1: CHECK_THROWS_AS(ipc::Client(address, options), ipc::TimeoutError); break;
        default: CHECK_THROWS_AS(ipc::Client(address, options), ipc::EOFError); break;
    }
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    server.join();
}

TEST_CASE("a Client without a timeout gives a greeting that stalls halfway its handshake time, no more", "[listener]") {
    test::LeakCheck leaks;
    const auto address = "@" + test::unique_name("stall");
    auto fake = raw_listen(address);
    const auto hello = frame(1, {'i', 'p', 'c', '-', 'l', 's', 't', 'n', 1, 0, 0, 0, 0});
    // Two bytes of the greeting, then nothing.
    auto server = serve_once(fake, {hello.begin(), hello.begin() + 2}, false);
    const auto start = std::chrono::steady_clock::now();
    // No timeout: the Client may wait for the Listener to accept as long as it lives, but once the
    // greeting has begun, the rest is bounded by the handshake time.
    CHECK_THROWS_AS(ipc::Client(address, {.handshake_timeout = std::chrono::milliseconds(300)}), ipc::TimeoutError);
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    server.join();
}

TEST_CASE("a Listener and a Client in one process meet through threads", "[listener]") {
    test::LeakCheck leaks;
    ipc::Listener listener;  // a generated abstract address, as Python's Listener()
    CHECK(listener.address().rfind("@ipc-listener-", 0) == 0);
    pollfd entry{listener.fileno(), POLLIN, 0};
    CHECK(::poll(&entry, 1, 0) == 0);
    std::optional<Connection> client;
    std::thread connector([&] {
        try {
            client = connect(listener.address());
        } catch (const ipc::Error& error) {
            WARN(error.what());
        }
    });
    CHECK(::poll(&entry, 1, 30'000) == 1);  // readable: a client waits
    auto server = listener.accept(test::bound);
    connector.join();
    REQUIRE(client);
    server.send(std::string("ping"));
    CHECK(test::recv_bounded<std::string>(*client) == "ping");
    client->send(7);
    CHECK(test::recv_bounded<int>(server) == 7);
    // Both ends are held by this one process: closing the client's must still read as EOF.
    client->close();
    CHECK_THROWS_AS(test::recv_bounded<int>(server), ipc::EOFError);
}

TEST_CASE("Listener and Client errors name the address", "[listener]") {
    test::LeakCheck leaks;
    test::TempDir dir;
    const auto missing_path = dir.file("nobody.sock");
    CHECK_THAT(test::error_of<ipc::FileNotFoundError>([&] { (void)ipc::Client(missing_path); }),
               Contains(missing_path));
    const auto missing_name = "@" + test::unique_name("nobody");
    CHECK_THAT(test::error_of<ipc::ConnectionRefusedError>([&] { (void)ipc::Client(missing_name); }),
               Contains(missing_name));
    const auto python_spelling = std::string(1, '\0') + "nobody-here";  // shown as "@nobody-here"
    CHECK_THAT(test::error_of<ipc::ConnectionRefusedError>([&] { (void)ipc::Client(python_spelling); }),
               Contains("@nobody-here"));

    const std::string too_long = "/tmp/" + std::string(120, 'x');
    CHECK_THAT(test::error_of<ipc::ValueError>([&] { (void)ipc::Listener(too_long); }), Contains("at most 107"));
    CHECK_THAT(test::error_of<ipc::ValueError>([&] { (void)ipc::Client(too_long); }), Contains("at most 107"));
    CHECK_THROWS_AS(ipc::Listener(""), ipc::ValueError);
    CHECK_THROWS_AS(ipc::Listener("@"), ipc::ValueError);
    CHECK_THROWS_AS(ipc::Listener("@x", {.authkey = ""}), ipc::ValueError);

    const auto path = dir.file("taken.sock");
    {
        ipc::Listener first(path);
        CHECK_THAT(test::error_of<ipc::OSError>([&] { (void)ipc::Listener(path); }), Contains("in use"));
        ipc::Listener named("@" + test::unique_name("taken"));
        CHECK_THROWS_AS(ipc::Listener(named.address()), ipc::OSError);
        CHECK_THROWS_AS(named.accept(20ms), ipc::TimeoutError);
        named.close();
        CHECK(named.closed());
        CHECK_THAT(test::error_of<ipc::ValueError>([&] { (void)named.accept(); }), Contains("closed"));
        // A moved Listener removes its file once, from wherever it went.
        ipc::Listener moved(std::move(first));
        CHECK(std::filesystem::exists(path));
        moved.close();
        CHECK_FALSE(std::filesystem::exists(path));
    }
    // A socket file that nobody listens on any more (its Listener died): refused, not "missing".
    raw_listen(path).reset();
    CHECK(std::filesystem::status(path).type() == std::filesystem::file_type::socket);
    CHECK_THAT(test::error_of<ipc::ConnectionRefusedError>([&] { (void)ipc::Client(path); }), Contains(path));
}
