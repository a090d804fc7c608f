// shm/liveness.cpp — reads a process's or thread's state and start time from /proc/ID/stat.
#include "shm/liveness.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "ipc/detail/thread_id.hpp"
#include "sys/fd.hpp"

namespace ipc::detail {

namespace {

struct Stat {
    bool exists = false;  // false also for a zombie or a dead task waiting to be reaped
    Birth birth = 0;
};

/// /proc/ID/stat exists for every thread, listed in /proc or not; after the id's death it is gone,
/// or shows state Z (zombie) or X (dead) until the parent reaps it. Its 22nd field is the start time.
Stat read_stat(const char* path) noexcept {
    Fd fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (!fd) return {errno != ENOENT && errno != ESRCH, 0};  // EMFILE and the like: assume it runs
    char text[1024];
    const ssize_t got = ::read(fd.get(), text, sizeof text - 1);
    if (got <= 0) return {};
    text[got] = '\0';
    const char* end_of_name = std::strrchr(text, ')');  // the command name may itself hold ')' or spaces
    if (!end_of_name || end_of_name[1] == '\0') return {true, 0};
    const char state = end_of_name[2];
    if (state == 'Z' || state == 'X' || state == 'x') return {};
    // Fields 3 (state) to 22 (starttime): skip 19 fields after the state.
    const char* field = end_of_name + 2;
    for (int skipped = 0; skipped < 19 && field; ++skipped) {
        field = std::strchr(field, ' ');
        if (field) ++field;
    }
    if (!field) return {true, 0};
    const auto ticks = std::strtoull(field, nullptr, 10);
    const auto birth = static_cast<Birth>(ticks);
    return {true, birth == 0 ? Birth{1} : birth};  // 0 means "not known"
}

Stat stat_of(std::uint32_t id) noexcept {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%u/stat", id);
    return read_stat(path);
}

struct Births {
    Birth thread = 0;
    Birth process = 0;
};
constinit thread_local Births births{};
// A forked child is another process, born later: its parent's births are not its own.
[[maybe_unused]] const int fork_handler_installed = ::pthread_atfork(nullptr, nullptr, [] { births = {}; });

}  // namespace

Birth birth_of(std::uint32_t id) noexcept { return stat_of(id).birth; }

Birth this_thread_birth() noexcept {
    if (births.thread == 0) births.thread = birth_of(this_thread_id());
    return births.thread;
}

Birth this_process_birth() noexcept {
    if (births.process == 0) births.process = birth_of(this_process_id());
    return births.process;
}

bool alive(std::uint32_t id, Birth birth) noexcept {
    const auto stat = stat_of(id);
    return stat.exists && (birth == 0 || stat.birth == 0 || stat.birth == birth);
}

}  // namespace ipc::detail
