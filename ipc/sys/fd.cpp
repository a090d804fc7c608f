// sys/fd.cpp — EINTR-safe reads, writes, polls and descriptor passing on owned descriptors.
#include "sys/fd.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "ipc/error.hpp"

namespace ipc::detail {

void write_all(int fd, std::span<const std::byte> data, const char* what) {
    while (!data.empty()) {
        ssize_t written = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (written < 0 && errno == ENOTSOCK) written = ::write(fd, data.data(), data.size());
        if (written < 0) {
            if (errno == EINTR) continue;
            throw_os_error("write", what);
        }
        data = data.subspan(static_cast<std::size_t>(written));
    }
}

bool read_exact(int fd, std::span<std::byte> data, const char* what,
                std::optional<std::chrono::steady_clock::time_point> deadline) {
    std::size_t done = 0;
    while (done < data.size()) {
        if (deadline) {
            auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - std::chrono::steady_clock::now());
            if (!poll_for(fd, POLLIN, std::max(left, std::chrono::nanoseconds(0)), what))
                throw TimeoutError(std::string("read ") + what + ": no answer in time");
        }
        ssize_t got = ::read(fd, data.data() + done, data.size() - done);
        if (got < 0) {
            if (errno == EINTR) continue;
            throw_os_error("read", what);
        }
        if (got == 0) {
            if (done == 0) return false;
            throw Error(std::string("read ") + what + ": the other side closed in the middle of a message");
        }
        done += static_cast<std::size_t>(got);
    }
    return true;
}

ssize_t send_with_descriptors(int fd, std::span<const std::byte> data, std::span<const int> descriptors, int flags) {
    if (descriptors.size() > max_passed_descriptors) {
        errno = EINVAL;
        return -1;
    }
    iovec part{const_cast<std::byte*>(data.data()), data.size()};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_passed_descriptors)];
    if (!descriptors.empty()) {
        message.msg_control = control;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * descriptors.size());
        cmsghdr* header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * descriptors.size());
        std::memcpy(CMSG_DATA(header), descriptors.data(), sizeof(int) * descriptors.size());
    }
    return ::sendmsg(fd, &message, flags | MSG_NOSIGNAL);
}

ssize_t receive_with_descriptors(int fd, std::span<std::byte> data, std::vector<int>& descriptors, int flags) {
    iovec part{data.data(), data.size()};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_passed_descriptors)];
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    const ssize_t got = ::recvmsg(fd, &message, flags | MSG_CMSG_CLOEXEC);
    if (got < 0) return got;
    for (cmsghdr* header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        const auto count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const auto* fds = reinterpret_cast<const int*>(CMSG_DATA(header));
        descriptors.insert(descriptors.end(), fds, fds + count);
    }
    return got;
}

bool poll_for(int fd, short events, std::chrono::nanoseconds timeout, const char* what) {
    const bool forever = timeout < std::chrono::nanoseconds(0);
    const auto deadline = std::chrono::steady_clock::now() + (forever ? std::chrono::nanoseconds(0) : timeout);
    for (;;) {
        int wait_ms = -1;
        if (!forever) {
            auto left = deadline - std::chrono::steady_clock::now();
            // Round up so that a wait never ends before its deadline and spins on a zero timeout.
            wait_ms = left <= std::chrono::nanoseconds(0)
                          ? 0
                          : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
        }
        pollfd entry{fd, events, 0};
        int ready = ::poll(&entry, 1, wait_ms);
        if (ready < 0) {
            if (errno == EINTR) continue;
            throw_os_error("poll", what);
        }
        if (ready > 0) return true;
        if (!forever && std::chrono::steady_clock::now() >= deadline) return false;
    }
}

}  // namespace ipc::detail
