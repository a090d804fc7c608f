// shm/resource_tracker.cpp — the tracker process reads "+name" / "-name" messages from a SOCK_SEQPACKET
// socket shared by this process and its forked children. It removes a registered name once its creator
// is gone (looking once a second), and every name still registered when the last client exits (end
// of file): those are the ones a SIGKILLed creator could not remove itself. Starting, in a session of
// its own, it removes what killed creators left when their tracker died too.
#include "shm/resource_tracker.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <set>

#include "ipc/detail/thread_id.hpp"
#include "shm/segment_files.hpp"

namespace ipc::detail {

namespace {

struct Tracker {
    std::mutex mutex;
    int fd = -1;
    std::uint32_t pid = 0;  // the tracker's: shared with forked children, which use the same one
    Birth birth = 0;
};

Tracker& tracker() {
    static Tracker instance;
    return instance;
}

/// Removes the anonymous segments of this user whose creator and tracker are both gone: nobody
/// else will. A creator that lives, or a tracker that lives, still answers for its own.
void sweep_orphans() noexcept {
    const char* folder = std::getenv("IPC_SHM_DIR");
    const std::string path = folder && *folder ? folder : "/dev/shm";
    DIR* directory = ::opendir(path.c_str());
    if (!directory) return;
    while (const dirent* entry = ::readdir(directory)) {
        const std::string name = entry->d_name;
        const auto parts = parse_anonymous_name(name);
        if (!parts || alive(parts->creator, parts->creator_birth) || alive(parts->tracker, parts->tracker_birth)) continue;
        struct stat info{};
        if (::fstatat(::dirfd(directory), entry->d_name, &info, AT_SYMLINK_NOFOLLOW) != 0 || info.st_uid != ::geteuid())
            continue;
        if (unlink_segment_file(name) == 0)
            std::fprintf(stderr, "ipc resource tracker: removed shared memory '%s' whose creator and tracker are gone\n",
                         name.c_str());
    }
    ::closedir(directory);
}

[[noreturn]] void run_tracker(int channel) {
    // Its own session: a kill of the clients' process group (Ctrl-C, a job killed as a whole)
    // must not take the tracker along, which cleans up after them.
    ::setsid();
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGTERM, SIG_IGN);
    ::signal(SIGHUP, SIG_IGN);
    const char started = '!';  // the client waits for this: until now a kill of its group reaches us
    (void)::send(channel, &started, 1, MSG_NOSIGNAL);
    sweep_orphans();
    std::set<std::string> names;
    auto remove = [&](const std::string& name, const char* why) {
        if (unlink_segment_file(name) == 0)
            std::fprintf(stderr, "ipc resource tracker: removed shared memory '%s' %s\n", name.c_str(), why);
    };
    char message[512];
    for (;;) {
        // A creator that is killed cannot say so: once a second, the names whose creator is gone go.
        pollfd entry{channel, POLLIN, 0};
        const int ready = ::poll(&entry, 1, 1000);
        if (ready < 0 && errno != EINTR) break;
        if (ready == 0) {
            std::erase_if(names, [&](const std::string& name) {
                const auto parts = parse_anonymous_name(name);
                if (!parts || alive(parts->creator, parts->creator_birth)) return false;
                remove(name, "whose creator was killed");
                return true;
            });
            continue;
        }
        const ssize_t got = ::recv(channel, message, sizeof message, MSG_DONTWAIT);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got <= 0) break;  // every client is gone
        std::string name(message + 1, static_cast<std::size_t>(got - 1));
        if (message[0] == '+')
            names.insert(name);
        else
            names.erase(name);
    }
    for (const auto& name : names) remove(name, "that its creator left behind");
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
    // Wait (bounded) until the tracker is in its own session, so that a kill of this process's
    // group right after it creates something still spares the tracker.
    pollfd entry{ends[0], POLLIN, 0};
    char started = 0;
    if (::poll(&entry, 1, 5000) > 0) (void)::recv(ends[0], &started, 1, MSG_DONTWAIT);
    state.fd = ends[0];
    state.pid = static_cast<std::uint32_t>(pid);
    state.birth = birth_of(state.pid);
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

std::string anonymous_segment_name() {
    static std::mutex mutex;
    static std::mt19937_64 random{std::random_device{}()};
    std::uint32_t tracker_pid = 0;
    Birth tracker_birth = 0;
    {
        std::lock_guard lock(tracker().mutex);
        if (connect_locked() >= 0) {
            tracker_pid = tracker().pid;
            tracker_birth = tracker().birth;
        }
    }
    std::lock_guard lock(mutex);
    char text[96];
    std::snprintf(text, sizeof text, "ipc_%" PRIu32 "_%08" PRIx32 "_%" PRIu32 "_%08" PRIx32 "_%016" PRIx64, this_process_id(),
                  this_process_birth(), tracker_pid, tracker_birth, static_cast<std::uint64_t>(random()));
    return text;
}

std::optional<AnonymousName> parse_anonymous_name(const std::string& name) noexcept {
    AnonymousName parts;
    std::uint64_t digits = 0;
    int length = 0;
    if (std::sscanf(name.c_str(), "ipc_%" SCNu32 "_%8" SCNx32 "_%" SCNu32 "_%8" SCNx32 "_%16" SCNx64 "%n", &parts.creator,
                    &parts.creator_birth, &parts.tracker, &parts.tracker_birth, &digits, &length) != 5 ||
        static_cast<std::size_t>(length) != name.size() || parts.creator == 0)
        return std::nullopt;
    return parts;
}

}  // namespace ipc::detail
