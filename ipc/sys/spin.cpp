// sys/spin.cpp — whether the machine has more runnable threads than CPUs, for a waiter whose spins
// keep missing (sys/spin.hpp): only then does it sleep at once.
#include "sys/spin.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstring>
#include <limits>

namespace ipc::detail {
namespace {

/// How old a look at the load may be before a waiter looks again.
constexpr auto look_interval = std::chrono::milliseconds(4);

std::atomic<bool> oversubscribed{false};
std::atomic<std::int64_t> last_look_ns{std::numeric_limits<std::int64_t>::min() / 2};

/// The number of runnable threads now (the fourth field of /proc/loadavg, "running/total"),
/// this one included; -1 when it cannot be read.
long runnable_threads() noexcept {
    const int fd = ::open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char text[128];
    const auto got = ::read(fd, text, sizeof text - 1);
    ::close(fd);
    if (got <= 0) return -1;
    text[got] = '\0';
    const char* field = text;
    for (int spaces = 0; spaces < 3 && field != nullptr; ++spaces) {
        field = std::strchr(field, ' ');
        if (field != nullptr) ++field;
    }
    long running = -1;
    if (field == nullptr || std::from_chars(field, text + got, running).ec != std::errc{}) return -1;
    return running;
}

long online_cpus() noexcept {
    static const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    return cpus;
}

}  // namespace

bool cpus_oversubscribed() noexcept {
    const auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    auto last = last_look_ns.load(std::memory_order_relaxed);
    if (now_ns - last >= std::chrono::nanoseconds(look_interval).count() &&
        last_look_ns.compare_exchange_strong(last, now_ns, std::memory_order_relaxed)) {  // one thread looks
        const long running = runnable_threads();
        oversubscribed.store(running > 0 && online_cpus() > 0 && running > online_cpus(), std::memory_order_relaxed);
    }
    return oversubscribed.load(std::memory_order_relaxed);
}

}  // namespace ipc::detail
