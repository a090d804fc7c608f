// The forkserver start method itself: one server forks every child, it is started again when it
// died, a child whose server is stopped or dead still ends with a bounded join (a Pool keeps such
// workers), preload functions run in the server, and bytes another process writes to its socket
// do not stop it.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "harness.hpp"
#include "ipc/pool.hpp"
#include "ipc/process.hpp"
#include "ipc/synchronize.hpp"
#include "process/forkserver_protocol.hpp"
#include "sys/fd.hpp"

using namespace std::chrono_literals;
using ipc::Process;
using ipc::StartMethod;
namespace test = ipc::test;

namespace {

int g_preloaded = 0;
void preload_answer() { g_preloaded = 42; }
int read_preloaded() { return g_preloaded; }

int parent_pid_of_child() { return static_cast<int>(::getppid() % 250); }
int return_value(int value) { return value; }
int worker_pid(int) { return static_cast<int>(::getpid()); }

/// Waits (bounded) for the test to let it end.
int wait_for(ipc::Event go) { return go.wait(test::bound) ? 0 : 9; }

Process start_forkserver_child(ipc::Event& go) {
    Process child({.start_method = StartMethod::forkserver}, wait_for, go);
    child.start();
    return child;
}

/// Kills the running forkserver and waits (bounded) until it is gone; returns its pid.
pid_t kill_forkserver() {
    const pid_t server = ipc::detail::forkserver_pid();
    ipc::detail::Fd server_end(static_cast<int>(::syscall(SYS_pidfd_open, server, 0)));
    REQUIRE(server_end);
    REQUIRE(::kill(server, SIGKILL) == 0);
    pollfd gone{server_end.get(), POLLIN, 0};
    REQUIRE(::poll(&gone, 1, static_cast<int>(std::chrono::milliseconds(test::bound).count())) == 1);
    return server;
}

}  // namespace

TEST_CASE("one forkserver forks every child and is not the program itself", "[process][forkserver]") {
    test::LeakCheck leaks;
    REQUIRE(test::run(StartMethod::forkserver, return_value, 1) == 1);
    const pid_t server = ipc::detail::forkserver_pid();
    REQUIRE(server > 0);
    CHECK(server != ::getpid());
    for (int i = 0; i < 3; ++i) CHECK(test::run(StartMethod::forkserver, parent_pid_of_child) == server % 250);
    CHECK(ipc::detail::forkserver_pid() == server);
}

TEST_CASE("a killed forkserver is started again and its running child still ends with a bounded join",
          "[process][forkserver][faults]") {
    test::LeakCheck leaks;
    ipc::Event go;
    Process orphan = start_forkserver_child(go);
    test::Reaper reaper(orphan);
    const pid_t server = ipc::detail::forkserver_pid();
    REQUIRE(::kill(server, SIGKILL) == 0);
    CHECK_FALSE(orphan.join(50ms));  // still running: its server's death is not its end
    CHECK_FALSE(orphan.exitcode());
    go.set();
    // Nobody is left to report its status: the end is seen through its pidfd, the code unknown.
    CHECK(test::join_bounded(orphan) == 255);

    CHECK(test::run(StartMethod::forkserver, return_value, 7) == 7);
    CHECK(ipc::detail::forkserver_pid() != server);
    CHECK(ipc::detail::forkserver_pid() > 0);
}

TEST_CASE("a forkserver killed while it has no child is started again at the next start",
          "[process][forkserver][faults]") {
    test::LeakCheck leaks;
    REQUIRE(test::run(StartMethod::forkserver, return_value, 1) == 1);
    const pid_t server = kill_forkserver();
    // No child's status socket tells of the death: the next request finds the socket closed.
    CHECK(test::run(StartMethod::forkserver, return_value, 5) == 5);
    CHECK(ipc::detail::forkserver_pid() != server);
}

TEST_CASE("a Pool under forkserver keeps its workers when the server is killed", "[process][forkserver][faults][pool]") {
    test::LeakCheck leaks;
    ipc::Pool pool({.processes = 2, .start_method = StartMethod::forkserver});
    const auto before = pool.map_async(&worker_pid, std::vector<int>(64, 0), 1).get(test::bound);
    kill_forkserver();
    // The workers' status sockets now read end-of-file, but the workers live: the Pool must go on
    // with the same ones, neither taking them for dead nor waiting on them.
    for (int round = 0; round < 3; ++round) {
        const auto after = pool.map_async(&worker_pid, std::vector<int>(64, 0), 1).get(test::bound);
        for (const int pid : after) CHECK(std::find(before.begin(), before.end(), pid) != before.end());
    }
    pool.close();
    CHECK(pool.join(test::bound));
}

TEST_CASE("a forkserver child that ends while its server is stopped is joined once the server runs again",
          "[process][forkserver][faults]") {
    test::LeakCheck leaks;
    ipc::Event go;
    Process child = start_forkserver_child(go);
    test::Reaper reaper(child);
    const pid_t server = ipc::detail::forkserver_pid();
    REQUIRE(::kill(server, SIGSTOP) == 0);
    struct Resume {
        pid_t server;
        ~Resume() { ::kill(server, SIGCONT); }
    } resume{server};
    go.set();
    // Its end is known only when the server reaps it: meanwhile every bounded wait ends on time.
    CHECK_FALSE(child.join(100ms));
    CHECK_FALSE(child.exitcode());
    REQUIRE(::kill(server, SIGCONT) == 0);
    CHECK(test::join_bounded(child) == 0);
}

TEST_CASE("terminate and kill reach a forkserver child and its code says which signal", "[process][forkserver]") {
    test::LeakCheck leaks;
    ipc::Event never;
    Process terminated = start_forkserver_child(never);
    test::Reaper first(terminated);
    terminated.terminate();
    CHECK(test::join_bounded(terminated) == -SIGTERM);
    Process killed = start_forkserver_child(never);
    test::Reaper second(killed);
    killed.kill();
    CHECK(test::join_bounded(killed) == -SIGKILL);
    killed.kill();  // ended already: nothing to do, no error
}

TEST_CASE("preload functions run in a new forkserver before its children", "[process][forkserver]") {
    test::LeakCheck leaks;
    ipc::detail::stop_forkserver();  // preload applies to the next server
    ipc::set_forkserver_preload({&preload_answer});
    struct Reset {
        ~Reset() {
            ipc::set_forkserver_preload({});
            ipc::detail::stop_forkserver();
        }
    } reset;
    CHECK(test::run(StartMethod::forkserver, read_preloaded) == 42);
    CHECK(test::run(StartMethod::spawn, read_preloaded) == 0);
    CHECK(g_preloaded == 0);
    CHECK_THROWS_AS(ipc::set_forkserver_preload({nullptr}), ipc::ValueError);
}

TEST_CASE("bytes another process writes to the forkserver's socket do not stop it", "[process][forkserver][hostile]") {
    test::LeakCheck leaks;
    REQUIRE(test::run(StartMethod::forkserver, return_value, 1) == 1);
    const int control = ipc::detail::forkserver_socket();
    REQUIRE(control >= 0);
    const char junk[] = "not a request, and longer than one";
    CHECK(::send(control, junk, sizeof junk, MSG_NOSIGNAL) == sizeof junk);
    CHECK(::send(control, junk, 0, MSG_NOSIGNAL) == 0);  // not the end of file it resembles
    ipc::detail::forkserver::Request wrong_magic;
    wrong_magic.magic = 7;
    CHECK(::send(control, &wrong_magic, sizeof wrong_magic, MSG_NOSIGNAL) == sizeof wrong_magic);
    const ipc::detail::forkserver::Request without_descriptors;
    CHECK(::send(control, &without_descriptors, sizeof without_descriptors, MSG_NOSIGNAL) ==
          sizeof without_descriptors);
    // A well-formed request whose descriptors are not sockets: the child it forks cannot read a
    // task and ends, the answer cannot be written; the server goes on.
    int pipe_ends[2];
    REQUIRE(::pipe(pipe_ends) == 0);
    const int passed[] = {pipe_ends[0], pipe_ends[1]};
    const ipc::detail::forkserver::Request request;
    CHECK(ipc::detail::send_with_descriptors(control, std::as_bytes(std::span(&request, 1)), passed, 0) ==
          sizeof request);
    ::close(pipe_ends[0]);
    ::close(pipe_ends[1]);
    const pid_t server = ipc::detail::forkserver_pid();
    CHECK(test::run(StartMethod::forkserver, return_value, 5) == 5);
    CHECK(ipc::detail::forkserver_pid() == server);
}
