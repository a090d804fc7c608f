// process/spawn_launcher.cpp — the spawn start method: posix_spawn of /proc/self/exe with a marker
// argument, the task sent over an inherited socket (process/task_channel), and a ready/failed
// answer from the child before start() returns. The forkserver is started the same way.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "process/launch.hpp"
#include "process/task_channel.hpp"
#include "sys/fd.hpp"

extern char** environ;

namespace ipc::detail {

namespace {

constexpr int child_channel_fd = spawned_channel_fd;

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

}  // namespace

pid_t spawn_program(std::string_view marker, Fd child_end, const std::string& what) {
    // dup2(3, 3) would keep close-on-exec set, so make sure the child's end is not already fd 3.
    if (child_end.get() <= child_channel_fd) {
        int moved = ::fcntl(child_end.get(), F_DUPFD_CLOEXEC, child_channel_fd + 1);
        if (moved < 0) throw_os_error("fcntl for spawn", what);
        child_end.reset(moved);
    }
    const std::string program = program_name();
    const std::string argument(marker);
    char* argv[] = {const_cast<char*>(program.c_str()), const_cast<char*>(argument.c_str()), nullptr};
    pid_t pid = 0;
    SpawnSetup setup(child_end.get());
    int rc = ::posix_spawn(&pid, "/proc/self/exe", &setup.actions, &setup.attributes, argv, environ);
    if (rc != 0) throw_os_error("spawn", what, rc);
    return pid;
}

void spawn_child(ProcessState& state) {
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) < 0) throw_os_error("socketpair for spawn", state.name);
    Fd parent_end(ends[0]);
    const pid_t pid = spawn_program(spawn_marker, Fd(ends[1]), state.name);
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
    hand_over_task(state, StartMethod::spawn, parent_end.get(), child_pidfd.get(), [&] {
        reap.now();
        return describe_wait_status(reap.status);
    });
    reap.reaped = true;  // it runs: from here on it is the Process's child
    state.pid = pid;
    state.pidfd = child_pidfd.release();
}

void run_spawned_child() { run_task_from(spawned_channel_fd, StartMethod::spawn); }

}  // namespace ipc::detail
