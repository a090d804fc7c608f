// process/forkserver.cpp — the forkserver process: this program run afresh, one thread, that forks
// a child for each request on its control socket, reports the child's pid (with a pidfd) and its
// wait status, and leaves once every client has gone and every child it forked has ended.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <span>
#include <vector>

#include "ipc/codec.hpp"
#include "process/forkserver_protocol.hpp"
#include "process/launch.hpp"
#include "process/task_channel.hpp"

namespace ipc::detail {

namespace {

void send_to_client(int status_socket, const void* data, std::size_t size, std::span<const int> descriptors = {}) {
    // A client that gave up on its child has closed its end: nothing to tell it, and no SIGPIPE.
    while (send_with_descriptors(status_socket, {static_cast<const std::byte*>(data), size}, descriptors, MSG_DONTWAIT) < 0 &&
           errno == EINTR) {
    }
}

/// The first datagram: the functions to run before serving.
void run_preload(int control) {
    std::vector<std::byte> message(64 * 1024);
    std::vector<int> descriptors;
    ssize_t got;
    while ((got = receive_with_descriptors(control, message, descriptors, 0)) < 0 && errno == EINTR) {
    }
    for (int fd : descriptors) ::close(fd);
    if (got <= 0) std::exit(0);  // the client went away before it said anything
    message.resize(static_cast<std::size_t>(got));
    forkserver::Setup setup;
    try {
        codec::Reader reader(message);
        setup = codec::load<forkserver::Setup>(reader);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ipc forkserver: unreadable setup message: %s\n", e.what());
        std::exit(1);
    }
    if (setup.magic != forkserver::magic || setup.version != forkserver::version) {
        std::fprintf(stderr, "ipc forkserver: setup message of an unknown format (magic %u, version %u)\n", setup.magic,
                     setup.version);
        std::exit(1);
    }
    for (const auto& code : setup.preload) {
        try {
            reinterpret_cast<void (*)()>(const_cast<void*>(resolve_code(code)))();
        } catch (const std::exception& e) {
            // As Python's forkserver with a module it cannot import: say so and serve anyway.
            std::fprintf(stderr, "ipc forkserver: a preload function failed: %s\n", e.what());
        }
    }
}

[[noreturn]] void become_forked_child(int task_channel, const sigset_t& original_mask) {
    ::signal(SIGINT, SIG_DFL);
    ::sigprocmask(SIG_SETMASK, &original_mask, nullptr);
    // Keep only stdio and the task channel, as descriptor 3: not the control socket, nor another
    // child's status socket, whose end of file tells a client that its server died.
    if (task_channel != spawned_channel_fd) {
        ::dup2(task_channel, spawned_channel_fd);
    } else {
        ::fcntl(spawned_channel_fd, F_SETFD, 0);
    }
    ::close_range(spawned_channel_fd + 1, ~0U, 0);
    run_task_from(spawned_channel_fd, StartMethod::forkserver);
}

/// Forks the child one request asks for, tells the client its pid and keeps the status socket in
/// `status_sockets` until the child ends. False once every client has gone.
bool serve_request(int control, const sigset_t& original_mask, std::map<pid_t, Fd>& status_sockets) {
    forkserver::Request request;
    std::vector<int> descriptors;
    ssize_t got;
    // MSG_TRUNC: the datagram's whole length, so that a longer one is malformed, not cut to fit.
    while ((got = receive_with_descriptors(control, {reinterpret_cast<std::byte*>(&request), sizeof request}, descriptors,
                                           MSG_DONTWAIT | MSG_TRUNC)) < 0 &&
           errno == EINTR) {
    }
    if (got < 0) return true;  // EAGAIN: nothing after all
    if (got == 0 && descriptors.empty()) {
        // End of file once every client has gone; an empty datagram otherwise.
        pollfd entry{control, POLLIN, 0};
        return ::poll(&entry, 1, 0) <= 0 || !(entry.revents & POLLHUP);
    }
    std::vector<Fd> owned;
    for (int fd : descriptors) owned.emplace_back(fd);
    if (got != sizeof request || request.magic != forkserver::magic || request.version != forkserver::version ||
        owned.size() != forkserver::request_descriptors) {
        std::fprintf(stderr, "ipc forkserver: ignored a malformed request (%zd bytes, %zu descriptors)\n", got,
                     owned.size());
        return true;
    }
    const int task_channel = owned[0].get();
    const int status_socket = owned[1].get();
    const pid_t pid = ::fork();
    if (pid == 0) become_forked_child(task_channel, original_mask);
    forkserver::Started started{pid > 0 ? pid : -errno};
    if (pid < 0) {
        send_to_client(status_socket, &started, sizeof started);
        return true;
    }
    Fd pidfd(open_pidfd(pid));
    const int passed[] = {pidfd.get()};
    send_to_client(status_socket, &started, sizeof started, pidfd ? std::span<const int>(passed) : std::span<const int>());
    // Its end is reported in a later round, after this: SIGCHLD waits in the signalfd until then.
    status_sockets.emplace(pid, std::move(owned[1]));
    return true;
}

}  // namespace

[[noreturn]] void run_forkserver() {
    const int control = spawned_channel_fd;
    // Ctrl-C reaches the whole foreground group: the program and its children stop, the server
    // stays to report how they ended, and leaves when they have.
    ::signal(SIGINT, SIG_IGN);
    sigset_t child_ended, original_mask;
    sigemptyset(&child_ended);
    sigaddset(&child_ended, SIGCHLD);
    ::sigprocmask(SIG_BLOCK, &child_ended, &original_mask);
    Fd child_events(::signalfd(-1, &child_ended, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!child_events) {
        std::perror("ipc forkserver: signalfd");
        std::exit(1);
    }
    run_preload(control);

    std::map<pid_t, Fd> status_sockets;  // children forked and not yet reaped
    bool serving = true;
    while (serving || !status_sockets.empty()) {
        pollfd entries[2] = {{child_events.get(), POLLIN, 0}, {serving ? control : -1, POLLIN, 0}};
        if (::poll(entries, 2, -1) < 0) {
            if (errno == EINTR) continue;
            std::perror("ipc forkserver: poll");
            std::exit(1);
        }
        if (entries[0].revents) {
            signalfd_siginfo drained[8];
            while (::read(child_events.get(), drained, sizeof drained) > 0) {
            }
            int status = 0;
            pid_t ended;
            while ((ended = ::waitpid(-1, &status, WNOHANG)) > 0) {
                const auto found = status_sockets.find(ended);
                if (found == status_sockets.end()) continue;
                const forkserver::Ended report{status};
                send_to_client(found->second.get(), &report, sizeof report);
                status_sockets.erase(found);
            }
        }
        if (entries[1].revents) serving = serve_request(control, original_mask, status_sockets);
    }
    std::exit(0);
}

}  // namespace ipc::detail
