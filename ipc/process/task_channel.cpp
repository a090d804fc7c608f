// process/task_channel.cpp — the task a spawned or forkserver child runs, sent over a socket: the
// parent's side (send, wait for ready or failed) and the child's (decode, answer, run).
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "process/task_channel.hpp"

#include "process/launch.hpp"
#include "sys/fd.hpp"

namespace ipc::detail {

namespace {

constexpr std::uint32_t request_magic = 0x49504353;  // "IPCS"
constexpr std::uint32_t protocol_version = 3;

struct SpawnRequest {
    std::uint32_t magic = request_magic;
    std::uint32_t version = protocol_version;
    std::string name;
    std::vector<int> identity;
    bool daemon = false;
    int parent_pid = 0;
    std::string parent_name;
    std::vector<std::byte> authkey;
    int method = 0;  // the StartMethod that started the child
    CodeRef factory;
    bool has_function = false;
    CodeRef function;

    template <class Archive>
    void serialize(Archive& archive) {
        archive(magic, version, name, identity, daemon, parent_pid, parent_name, authkey, method, factory, has_function,
                function);
    }
};

enum class Ready : std::uint8_t { ok = 0, failed = 1 };

void send_reply(int fd, Ready status, std::string_view message) {
    std::vector<std::byte> reply(1 + sizeof(std::uint32_t) + message.size());
    reply[0] = static_cast<std::byte>(status);
    const auto length = static_cast<std::uint32_t>(message.size());
    std::memcpy(reply.data() + 1, &length, sizeof length);
    if (!message.empty()) std::memcpy(reply.data() + 1 + sizeof length, message.data(), message.size());
    write_all(fd, reply, "task channel");
}

enum class Io { done, child_gone, timed_out };

/// The parent's end of the task channel. Waits on the socket and the child's pidfd together, so a
/// child that dies is noticed even when another process holds a copy of its end (a concurrent fork).
struct SpawnSocket {
    int fd;
    int pidfd;
    std::chrono::steady_clock::time_point deadline;

    /// Sends `data`; `descriptors` ride along with its first byte (SCM_RIGHTS).
    Io send(std::span<const std::byte> data, std::span<const int> descriptors = {}) const {
        if (descriptors.size() > max_passed_descriptors)
            throw ProcessError("start: more than 250 file descriptors in one Process's arguments");
        while (!data.empty()) {
            ssize_t sent = send_with_descriptors(fd, data, descriptors, MSG_DONTWAIT);
            if (sent > 0) descriptors = {};  // delivered with the first byte
            if (sent > 0) {
                data = data.subspan(static_cast<std::size_t>(sent));
                continue;
            }
            if (errno == EINTR) continue;
            if (errno == EPIPE || errno == ECONNRESET) return Io::child_gone;
            if (errno != EAGAIN) throw_os_error("send task to new child", "");
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
            if (errno != EAGAIN) throw_os_error("read reply of new child", "");
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
            if (ready < 0) throw_os_error("poll new child", "");
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
        if (got < 0) throw_os_error("read task", "task channel");
        if (got == 0) throw ProcessError("the parent closed the task channel before sending a task");
        done += static_cast<std::size_t>(got);
    }
    return descriptors;
}

}  // namespace

void hand_over_task(const ProcessState& state, StartMethod method, int channel, int pidfd,
                    const std::function<std::string()>& describe_end) {
    SpawnRequest request;
    request.name = state.name;
    request.identity = state.identity;
    request.daemon = state.daemon;
    request.parent_pid = ::getpid();
    request.parent_name = self().name;
    request.authkey = current_authkey();
    request.method = static_cast<int>(method);
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

    const auto cannot_start = [&](const std::string& reason) {
        return ProcessError("cannot start process '" + state.name + "' with " + std::string(to_string(method)) + ": " +
                            reason);
    };
    const auto deadline = std::chrono::steady_clock::now() + task_ready_timeout;
    SpawnSocket socket{channel, pidfd, deadline};

    Io io = socket.send(task, descriptors);
    std::uint8_t status = 0;
    if (io == Io::done) io = socket.receive(std::as_writable_bytes(std::span(&status, 1)));
    if (io == Io::timed_out) throw cannot_start("the new process did not report ready within 60 s");
    if (io == Io::child_gone)
        throw cannot_start("the new process ended before it was ready (" + describe_end() +
                           "); does its main() call ipc::init(argc, argv) first?");
    if (static_cast<Ready>(status) != Ready::ok) {
        std::uint32_t size = 0;
        std::string message = "the child reported a failure it could not describe";
        if (socket.receive(std::as_writable_bytes(std::span(&size, 1))) == Io::done && size < (1u << 20)) {
            std::string text(size, '\0');
            if (socket.receive(std::as_writable_bytes(std::span(text.data(), text.size()))) == Io::done) message = text;
        }
        throw cannot_start(message);
    }
}

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) return "it exited with code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return "it was killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
    return "it stopped";
}

void run_task_from(int channel_fd, StartMethod method) {
    Fd channel(channel_fd);
    std::unique_ptr<Runnable> target;
    std::vector<int> received;  // descriptors handed over with the task; handles keep duplicates
    try {
        std::uint64_t length = 0;
        received = receive_length_and_descriptors(channel.get(), length);
        std::vector<std::byte> task(length);
        if (!read_exact(channel.get(), task, "task channel") && length != 0)
            throw ProcessError("the parent closed the task channel in the middle of a task");
        codec::Reader reader(task, received);
        auto request = codec::load<SpawnRequest>(reader);
        if (request.magic != request_magic || request.version != protocol_version || request.method != static_cast<int>(method))
            throw ProcessError("the task has an unknown format (magic " + std::to_string(request.magic) + ", version " +
                               std::to_string(request.version) + ")");
        become_child(Identity{request.name, request.identity, request.daemon, static_cast<pid_t>(request.parent_pid),
                              request.parent_name, std::move(request.authkey), method});
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
