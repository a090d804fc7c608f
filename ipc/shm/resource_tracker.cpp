// shm/resource_tracker.cpp — the tracker process reads "+name" / "-name" messages from a SOCK_SEQPACKET
// socket shared by this process and its forked children. When the last of them exits (end of file), it
// removes every name still registered: those are the ones a SIGKILLed creator could not remove itself.
#include "shm/resource_tracker.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <mutex>
#include <set>

#include "shm/segment_files.hpp"

namespace ipc::detail {

namespace {

struct Tracker {
    std::mutex mutex;
    int fd = -1;
};

Tracker& tracker() {
    static Tracker instance;
    return instance;
}

[[noreturn]] void run_tracker(int channel) {
    // Ctrl-C reaches the whole process group; the tracker must outlive its clients to clean up.
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGTERM, SIG_IGN);
    std::set<std::string> names;
    char message[512];
    for (;;) {
        ssize_t got = ::recv(channel, message, sizeof message, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;  // every client is gone
        std::string name(message + 1, static_cast<std::size_t>(got - 1));
        if (message[0] == '+')
            names.insert(name);
        else
            names.erase(name);
    }
    for (const auto& name : names) {
        if (unlink_segment_file(name) == 0)
            std::fprintf(stderr, "ipc resource tracker: removed shared memory '%s' that its creator left behind\n",
                         name.c_str());
    }
    ::_exit(0);
}

/// Caller holds the tracker mutex.
int connect_locked() {
    auto& state = tracker();
    if (state.fd >= 0) return state.fd;
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) < 0) return -1;
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(ends[0]);
        ::close(ends[1]);
        return -1;
    }
    if (pid == 0) {
        // Keep only stdio and our end, so that no client's descriptor keeps a socket of ours open.
        if (ends[1] != 3) {
            ::dup2(ends[1], 3);
        } else {
            ::fcntl(3, F_SETFD, 0);
        }
        ::close_range(4, ~0U, 0);
        run_tracker(3);
    }
    ::close(ends[1]);
    state.fd = ends[0];
    return state.fd;
}

void send_message(char operation, const std::string& name) noexcept {
    std::string message = operation + name;
    std::lock_guard lock(tracker().mutex);
    int fd = connect_locked();
    if (fd < 0) return;  // no tracker: cleanup after SIGKILL is lost, normal cleanup still works
    while (::send(fd, message.data(), message.size(), MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
}

}  // namespace

void track_segment(const std::string& name) noexcept { send_message('+', name); }
void untrack_segment(const std::string& name) noexcept { send_message('-', name); }

void ensure_resource_tracker() noexcept {
    std::lock_guard lock(tracker().mutex);
    connect_locked();
}

}  // namespace ipc::detail
