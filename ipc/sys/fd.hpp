// sys/fd.hpp — an owned file descriptor and the EINTR-safe reads and writes the library needs.
// Private to the library: users never see raw descriptors except as sentinels.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace ipc::detail {

class Fd {
public:
    Fd() noexcept = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) reset(std::exchange(other.fd_, -1));
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);  // close is never retried on EINTR on Linux: the fd is gone either way
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

/// Writes all of `data`; MSG_NOSIGNAL on sockets so a dead peer is an error, not SIGPIPE. Throws OSError.
void write_all(int fd, std::span<const std::byte> data, const char* what);
/// Reads exactly `data.size()` bytes; false on end of file before the first byte, OSError on other
/// failures, Error on a short read. Gives up with TimeoutError at `deadline` if one is set.
bool read_exact(int fd, std::span<std::byte> data, const char* what,
                std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);
/// One sendmsg(2) of `data` (MSG_NOSIGNAL added to `flags`), with `descriptors` riding along its
/// first byte (SCM_RIGHTS, at most max_passed_descriptors). Returns what sendmsg returns; errno as it sets it.
ssize_t send_with_descriptors(int fd, std::span<const std::byte> data, std::span<const int> descriptors, int flags);
/// One recvmsg(2) into `data`; descriptors that came along are appended to `descriptors`, close-on-exec.
/// Returns what recvmsg returns; errno as it sets it.
ssize_t receive_with_descriptors(int fd, std::span<std::byte> data, std::vector<int>& descriptors, int flags);
inline constexpr std::size_t max_passed_descriptors = 250;

/// poll(2) for `events` with EINTR handled; false on timeout. A negative timeout waits forever.
bool poll_for(int fd, short events, std::chrono::nanoseconds timeout, const char* what);

}  // namespace ipc::detail
