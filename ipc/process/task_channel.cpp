// process/spawn_launcher.cpp — the spawn start method: posix_spawn of /proc/self/exe with a marker
// argument, the task sent over an inherited socket, and a ready/failed answer from the child
// before start() returns.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "process/launch.hpp"
#include "sys/fd.hpp"

extern char** environ;

namespace ipc::detail {

namespace {

constexpr int child_channel_fd = 3;
constexpr std::uint32_t request_magic = 0x49504353;  // "IPCS"
constexpr std::uint32_t protocol_version = 2;
// A child that has not decoded its task by then is stuck in its own static initialisation.
constexpr auto ready_timeout = std::chrono::seconds(60);

struct SpawnRequest {
    std::uint32_t magic = request_magic;
    std::uint32_t version = protocol_version;
    std::string name;
    std::vector<int> identity;
    bool daemon = false;
    int parent_pid = 0;
    std::string parent_name;
    std::vector<std::byte> authkey;
    CodeRef factory;
    bool has_function = false;
    CodeRef function;

    template <class Archive>
    void serialize(Archive& archive) {
        archive(magic, version, name, identity, daemon, parent_pid, parent_name, authkey, factory, has_function, function);
    }
};

enum class Ready : std::uint8_t { ok = 0, failed = 1 };

void send_reply(int fd, Ready status, std::string_view message) {
    std::vector<std::byte> reply(1 + sizeof(std::uint32_t) + message.size());
    reply[0] = static_cast<std::byte>(status);
    const auto length = static_cast<std::uint32_t>(message.size());
    std::memcpy(reply.data() + 1, &length, sizeof length);
    if (!message.empty()) std::memcpy(reply.data() + 1 + sizeof length, message.data(), message.size());
    write_all(fd, reply, "spawn channel");
}

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) return "it exited with code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "it was killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
    return "it stopped";
}

int reap_blocking(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

/// posix_spawn actions and attributes, destroyed on every path.
struct SpawnSetup {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    SpawnSetup(int channel) {
        ::posix_spawn_file_actions_init(&actions);
        ::posix_spawnattr_init(&attributes);
        // The child gets stdin/stdout/stderr and its channel, nothing else of ours.
        ::posix_spawn_file_actions_adddup2(&actions, channel, child_channel_fd);
        ::posix_spawn_file_actions_addclosefrom_np(&actions, child_channel_fd + 1);
        // A fresh program: default dispositions and an empty mask, whatever this thread has.
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        ::posix_spawnattr_setsigmask(&attributes, &none);
        ::posix_spawnattr_setsigdefault(&attributes, &all);
        ::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    }
    ~SpawnSetup() {
        ::posix_spawn_file_actions_destroy(&actions);
        ::posix_spawnattr_destroy(&attributes);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;
};

enum class Io { done, child_gone, timed_out };

/// The parent's end of the spawn socket. Waits on the socket and the child's pidfd together, so a
/// child that dies is noticed even when another process holds a copy of its end (a concurrent fork).
struct SpawnSocket {
    int fd;
    int pidfd;
    std::chrono::steady_clock::time_point deadline;

    /// Sends `data`; `descriptors` ride along with its first byte (SCM_RIGHTS).
    Io send(std::span<const std::byte> data, std::span<const int> descriptors = {}) const {
        if (descriptors.size() > max_passed_descriptors)
            throw ProcessError("spawn: more than 250 file descriptors in one Process's arguments");
        while (!data.empty()) {
            ssize_t sent = send_with_descriptors(fd, data, descriptors, MSG_DONTWAIT);
            if (sent > 0) descriptors = {};  // delivered with the first byte
            if (sent > 0) {
                data = data.subspan(static_cast<std::size_t>(sent));
                continue;
            }
            if (errno == EINTR) continue;
            if (errno == EPIPE || errno == ECONNRESET) return Io::child_gone;
            if (errno != EAGAIN) throw_os_error("send task to spawned child", "");
            if (Io io = wait(POLLOUT); io != Io::done) return io;
        }
        return Io::done;
    }

    Io receive(std::span<std::byte> data) const {
        while (!data.empty()) {
            ssize_t got = ::recv(fd, data.data(), data.size(), MSG_DONTWAIT);
            if (got > 0) {
                data = data.subspan(static_cast<std::size_t>(got));
                continue;
            }
            if (got == 0) return Io::child_gone;
            if (errno == EINTR) continue;
            if (errno == ECONNRESET) return Io::child_gone;
            if (errno != EAGAIN) throw_os_error("read reply of spawned child", "");
            if (Io io = wait(POLLIN); io != Io::done) {
                // The child may have written its reply just before it ended: read what is there.
                got = ::recv(fd, data.data(), data.size(), MSG_DONTWAIT);
                if (got > 0) {
                    data = data.subspan(static_cast<std::size_t>(got));
                    continue;
                }
                return io;
            }
        }
        return Io::done;
    }

    /// done when the socket is ready for `events`; child_gone when only the pidfd is.
    Io wait(short events) const {
        for (;;) {
            const auto left = deadline - std::chrono::steady_clock::now();
            if (left <= std::chrono::nanoseconds(0)) return Io::timed_out;
            pollfd entries[2] = {{fd, events, 0}, {pidfd, POLLIN, 0}};
            int ready = ::poll(entries, 2, static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count()));
            if (ready < 0 && errno == EINTR) continue;
            if (ready < 0) throw_os_error("poll spawned child", "");
            if (entries[0].revents) return Io::done;
            if (entries[1].revents) return Io::child_gone;
        }
    }
};

/// Reads the task's length and the descriptors that came with its first byte.
std::vector<int> receive_length_and_descriptors(int fd, std::uint64_t& length) {
    std::vector<int> descriptors;
    auto* target = reinterpret_cast<std::byte*>(&length);
    std::size_t done = 0;
    while (done < sizeof length) {
        ssize_t got = receive_with_descriptors(fd, {target + done, sizeof length - done}, descriptors, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) throw_os_error("read task", "spawn channel");
        if (got == 0) throw ProcessError("the parent closed the spawn channel before sending a task");
        done += static_cast<std::size_t>(got);
    }
    return descriptors;
}

}  // namespace

void spawn_child(ProcessState& state) {
    SpawnRequest request;
    request.name = state.name;
    request.identity = state.identity;
    request.daemon = state.daemon;
    request.parent_pid = ::getpid();
    request.parent_name = self().name;
    request.authkey = current_authkey();
    request.factory = locate_code(reinterpret_cast<const void*>(state.target->spawn_factory()));
    if (const void* function = state.target->spawn_function()) {
        request.has_function = true;
        request.function = locate_code(function);
    }
    std::vector<std::byte> task(sizeof(std::uint64_t));  // room for the length, filled in below
    std::vector<int> descriptors;
    codec::Writer writer(task, &descriptors);
    codec::save(writer, request);
    state.target->save_for_spawn(writer);
    const std::uint64_t length = task.size() - sizeof(std::uint64_t);
    std::memcpy(task.data(), &length, sizeof length);

    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) < 0) throw_os_error("socketpair for spawn", state.name);
    Fd parent_end(ends[0]);
    Fd child_end(ends[1]);
    // dup2(3, 3) would keep close-on-exec set, so make sure the child's end is not already fd 3.
    if (child_end.get() <= child_channel_fd) {
        int moved = ::fcntl(child_end.get(), F_DUPFD_CLOEXEC, child_channel_fd + 1);
        if (moved < 0) throw_os_error("fcntl for spawn", state.name);
        child_end.reset(moved);
    }

    const std::string program = program_name();
    char* argv[] = {const_cast<char*>(program.c_str()), const_cast<char*>(spawn_marker.data()), nullptr};
    pid_t pid = 0;
    {
        SpawnSetup setup(child_end.get());
        int rc = ::posix_spawn(&pid, "/proc/self/exe", &setup.actions, &setup.attributes, argv, environ);
        if (rc != 0) throw_os_error("spawn", state.name, rc);
    }
    child_end.reset();
    Fd child_pidfd(open_pidfd(pid));

    // Until the child reports ready, every way out kills and reaps it: no zombie, no stray child.
    struct Reap {
        pid_t pid;
        int status = 0;
        bool reaped = false;
        void now() {
            if (reaped) return;
            ::kill(pid, SIGKILL);  // a no-op for a child that is already gone
            status = reap_blocking(pid);
            reaped = true;
        }
        ~Reap() { now(); }
    } reap{pid};
    const auto cannot_start = [&](const std::string& reason) {
        return ProcessError("cannot start process '" + state.name + "' with spawn: " + reason);
    };
    const auto deadline = std::chrono::steady_clock::now() + ready_timeout;
    SpawnSocket channel{parent_end.get(), child_pidfd.get(), deadline};

    Io io = channel.send(task, descriptors);
    std::uint8_t status = 0;
    if (io == Io::done) io = channel.receive(std::as_writable_bytes(std::span(&status, 1)));
    if (io == Io::timed_out) throw cannot_start("the new program did not report ready within 60 s");
    if (io == Io::child_gone) {
        reap.now();
        throw cannot_start("the new program ended before it was ready (" + describe_wait_status(reap.status) +
                           "); does its main() call ipc::init(argc, argv) first?");
    }
    if (static_cast<Ready>(status) != Ready::ok) {
        std::uint32_t size = 0;
        std::string message = "the child reported a failure it could not describe";
        if (channel.receive(std::as_writable_bytes(std::span(&size, 1))) == Io::done && size < (1u << 20)) {
            std::string text(size, '\0');
            if (channel.receive(std::as_writable_bytes(std::span(text.data(), text.size()))) == Io::done) message = text;
        }
        throw cannot_start(message);
    }
    reap.reaped = true;  // it runs: from here on it is the Process's child
    state.pid = pid;
    state.pidfd = child_pidfd.release();
}

void run_spawned_child() {
    Fd channel(child_channel_fd);
    std::unique_ptr<Runnable> target;
    std::vector<int> received;  // descriptors handed over with the task; handles keep duplicates
    try {
        std::uint64_t length = 0;
        received = receive_length_and_descriptors(channel.get(), length);
        std::vector<std::byte> task(length);
        if (!read_exact(channel.get(), task, "spawn channel") && length != 0)
            throw ProcessError("the parent closed the spawn channel in the middle of a task");
        codec::Reader reader(task, received);
        auto request = codec::load<SpawnRequest>(reader);
        if (request.magic != request_magic || request.version != protocol_version)
            throw ProcessError("the spawn task has an unknown format (magic " + std::to_string(request.magic) + ", version " +
                               std::to_string(request.version) + ")");
        become_child(Identity{request.name, request.identity, request.daemon, static_cast<pid_t>(request.parent_pid),
                              request.parent_name, std::move(request.authkey), StartMethod::spawn});
        auto factory = reinterpret_cast<SpawnFactory>(const_cast<void*>(resolve_code(request.factory)));
        const void* function = request.has_function ? resolve_code(request.function) : nullptr;
        target = factory(function, reader);
        if (!reader.remaining().empty())
            throw CodecError(std::to_string(reader.remaining().size()) + " bytes of the task were left unread");
        for (int fd : received) ::close(fd);
    } catch (const std::exception& e) {
        try {
            send_reply(channel.get(), Ready::failed, e.what());
        } catch (...) {
        }
        std::exit(1);
    }
    try {
        send_reply(channel.get(), Ready::ok, {});
    } catch (const std::exception&) {
        std::exit(1);  // the parent gave up on us; running the target now would be unexpected
    }
    channel.reset();
    const int code = run_target(*target);
    target.reset();  // arguments (handles) close before the exit cleanup
    std::exit(code);
}

}  // namespace ipc::detail
