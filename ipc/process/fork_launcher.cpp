// process/fork_launcher.cpp — the fork start method: the child is a copy of this process that
// runs the target and exits; the channel ends passed to it are registered as its own before it runs.
#include <stdio_ext.h>
#include <unistd.h>

#include "process/launch.hpp"
#include "shm/holders.hpp"

namespace ipc::detail {

void fork_child(ProcessState& state, std::unique_lock<std::mutex>& lock) {
    Identity child{state.name, state.identity, state.daemon, ::getpid(), self().name, current_authkey(), StartMethod::fork};
    pid_t pid;
    {
        // Held across fork() so that the child inherits both registries in a consistent state.
        std::scoped_lock registries(children_mutex(), endpoint_registry_mutex(), forkserver_mutex());
        pid = ::fork();
        if (pid == 0) {
            // Process::start flushed stdio before the fork; whatever is buffered now, another thread
            // of the parent wrote since, and the parent prints it: the child must not print it again.
            ::__fpurge(stdout);
            ::__fpurge(stderr);
            become_child(child);
            forget_endpoints_after_fork();
            state.target->forked(true, 0);
            // The registry locks and this state's lock were taken by the forking thread; the
            // child must not keep them held.
            children_mutex().unlock();
            endpoint_registry_mutex().unlock();
            forkserver_mutex().unlock();
            lock.unlock();
            exit_forked_child(run_target(*state.target));
        }
        // The child holds the channel ends passed to it; register it before anyone can look.
        if (pid > 0) state.target->forked(false, static_cast<std::uint32_t>(pid));
    }
    if (pid < 0) throw_os_error("fork", state.name);
    state.pid = pid;
}

}  // namespace ipc::detail
