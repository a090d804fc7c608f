// process/forkserver_launcher.cpp — the forkserver start method, the client's side: start the
// server on first use (again when it died), ask it for a child, and hand the child its task over a
// socket of their own, as under spawn.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "ipc/codec.hpp"
#include "process/forkserver_protocol.hpp"
#include "process/launch.hpp"
#include "process/task_channel.hpp"

namespace ipc {

namespace detail {

namespace {

/// This process's way to its forkserver. A forked child inherits it: the control socket takes one
/// datagram per request, so parent and children may share one server.
struct ForkServerClient {
    Fd control;
    pid_t pid = 0;         // the server's
    pid_t started_by = 0;  // the process that spawned the server, the only one that may reap it
    std::vector<CodeRef> preload;
};

ForkServerClient& client() {
    static ForkServerClient instance;
    return instance;
}

std::span<const std::byte> bytes_of(const auto& value) { return std::as_bytes(std::span(&value, 1)); }
std::span<std::byte> writable_bytes_of(auto& value) { return std::as_writable_bytes(std::span(&value, 1)); }

void start_server_locked(ForkServerClient& server) {
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) < 0) throw_os_error("socketpair", "the forkserver");
    Fd ours(ends[0]);
    const pid_t pid = spawn_program(forkserver_marker, Fd(ends[1]), "the forkserver");
    forkserver::Setup setup;
    setup.preload = server.preload;
    std::vector<std::byte> message;
    codec::Writer writer(message);
    codec::save(writer, setup);
    // The first datagram on a fresh socket: there is room for it, and the server reads it first.
    if (::send(ours.get(), message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        const int error = errno;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        throw_os_error("send the setup", "the forkserver", error);
    }
    server.control = std::move(ours);
    server.pid = pid;
    server.started_by = ::getpid();
}

/// Drops this process's way to the server. The server leaves once no client and no child of it
/// is left (or has left already: its socket was found closed); the process that started it waits
/// 5 s at most for that, kills it if it is still there, and reaps it.
void end_server_locked(ForkServerClient& server) {
    server.control.reset();
    if (server.started_by == ::getpid() && server.pid > 0) {
        Fd pidfd(open_pidfd(server.pid));
        if (pidfd && !poll_for(pidfd.get(), POLLIN, std::chrono::seconds(5), "the forkserver")) ::kill(server.pid, SIGKILL);
        while (::waitpid(server.pid, nullptr, 0) < 0 && errno == EINTR) {
        }
    }
    server.pid = 0;
    server.started_by = 0;
}

/// Sends one request; false when the server is gone.
bool send_request_locked(const ForkServerClient& server, int task_end, int status_end, const std::string& name) {
    const forkserver::Request request;
    const int passed[forkserver::request_descriptors] = {task_end, status_end};
    const auto deadline = std::chrono::steady_clock::now() + task_ready_timeout;
    for (;;) {
        if (send_with_descriptors(server.control.get(), bytes_of(request), passed, MSG_DONTWAIT) >= 0) return true;
        if (errno == EINTR) continue;
        if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) return false;
        if (errno != EAGAIN) throw_os_error("send a request to the forkserver", name);
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left <= std::chrono::nanoseconds(0) || !poll_for(server.control.get(), POLLOUT, left, name.c_str()))
            throw ProcessError("cannot start process '" + name + "' with forkserver: the forkserver (pid " +
                               std::to_string(server.pid) + ") took no request for 60 s; is it stopped?");
    }
}

/// Kills a child that will not run after all; its server reaps it.
struct KillUnlessRunning {
    int pidfd;
    bool running = false;
    ~KillUnlessRunning() {
        if (!running) ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    }
};

}  // namespace

std::mutex& forkserver_mutex() {
    static std::mutex mutex;
    return mutex;
}

pid_t forkserver_pid() noexcept {
    std::lock_guard lock(forkserver_mutex());
    return client().control ? client().pid : 0;
}

int forkserver_socket() noexcept {
    std::lock_guard lock(forkserver_mutex());
    return client().control.get();
}

void stop_forkserver() {
    std::lock_guard lock(forkserver_mutex());
    if (client().control) end_server_locked(client());
}

void reap_dead_forkserver() noexcept {
    std::lock_guard lock(forkserver_mutex());
    auto& server = client();
    if (server.started_by != ::getpid() || server.pid <= 0) return;
    Fd pidfd(open_pidfd(server.pid));
    if (!pidfd) return;
    pollfd ended{pidfd.get(), POLLIN, 0};
    if (::poll(&ended, 1, 1000) != 1) return;  // not gone after all: the next request finds out
    while (::waitpid(server.pid, nullptr, WNOHANG) < 0 && errno == EINTR) {
    }
    server.control.reset();
    server.pid = 0;
    server.started_by = 0;
}

void forkserver_child(ProcessState& state) {
    const auto cannot_start = [&](const std::string& reason) {
        return ProcessError("cannot start process '" + state.name + "' with forkserver: " + reason);
    };
    int task_ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, task_ends) < 0) throw_os_error("socketpair for forkserver", state.name);
    Fd task_ours(task_ends[0]);
    Fd task_child(task_ends[1]);
    int status_ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, status_ends) < 0) throw_os_error("socketpair for forkserver", state.name);
    Fd status_ours(status_ends[0]);
    Fd status_server(status_ends[1]);
    pid_t server_pid = 0;
    {
        std::lock_guard lock(forkserver_mutex());
        auto& server = client();
        bool sent = false;
        for (int attempt = 0; attempt < 2 && !sent; ++attempt) {
            if (!server.control) start_server_locked(server);
            sent = send_request_locked(server, task_child.get(), status_server.get(), state.name);
            if (!sent) end_server_locked(server);  // it died: the next round starts another
        }
        if (!sent)
            throw cannot_start("the forkserver ended as soon as it started; does main() call ipc::init(argc, argv) first?");
        server_pid = server.pid;
    }
    task_child.reset();
    status_server.reset();

    forkserver::Started started;
    std::vector<int> received;
    if (!poll_for(status_ours.get(), POLLIN, task_ready_timeout, state.name.c_str()))
        throw cannot_start("the forkserver (pid " + std::to_string(server_pid) + ") did not answer within 60 s");
    ssize_t got;
    while ((got = receive_with_descriptors(status_ours.get(), writable_bytes_of(started), received, MSG_DONTWAIT)) < 0 &&
           errno == EINTR) {
    }
    std::vector<Fd> passed;
    for (int fd : received) passed.emplace_back(fd);
    if (got < 0) throw_os_error("read the forkserver's answer", state.name);
    if (got == 0) throw cannot_start("the forkserver (pid " + std::to_string(server_pid) + ") ended before it answered");
    if (started.pid <= 0) throw_os_error("fork in the forkserver", state.name, -started.pid);
    if (got != sizeof started || passed.size() != 1)
        throw cannot_start("the forkserver's answer is malformed (" + std::to_string(got) + " bytes, " +
                           std::to_string(passed.size()) + " descriptors)");
    Fd pidfd = std::move(passed[0]);
    KillUnlessRunning guard{pidfd.get()};
    hand_over_task(state, StartMethod::forkserver, task_ours.get(), pidfd.get(), [&] {
        forkserver::Ended ended;
        // The server reports the status once it has reaped the child; it may be a moment behind.
        if (poll_for(status_ours.get(), POLLIN, std::chrono::seconds(5), state.name.c_str()) &&
            ::recv(status_ours.get(), &ended, sizeof ended, MSG_DONTWAIT) == sizeof ended)
            return describe_wait_status(ended.wait_status);
        return std::string("its exit status did not arrive");
    });
    guard.running = true;
    state.pid = started.pid;
    state.pidfd = pidfd.release();
    state.status_fd = status_ours.release();
}

}  // namespace detail

void set_forkserver_preload(std::vector<void (*)()> functions) {
    std::vector<detail::CodeRef> preload;
    for (std::size_t i = 0; i < functions.size(); ++i) {
        if (!functions[i]) throw ValueError("set_forkserver_preload: function " + std::to_string(i) + " is null");
        preload.push_back(detail::locate_code(reinterpret_cast<const void*>(functions[i])));
    }
    std::lock_guard lock(detail::forkserver_mutex());
    detail::client().preload = std::move(preload);
}

}  // namespace ipc
