// process/forkserver_protocol.hpp — what the forkserver and its clients say to each other. A client
// sends one datagram per child on the shared control socket, carrying the child's task channel and
// a status socket; the server answers on the status socket: the child's pid with its pidfd, and
// later the child's wait(2) status.
#pragma once

#include <cstdint>
#include <vector>

#include "ipc/detail/code_ref.hpp"

namespace ipc::detail::forkserver {

inline constexpr std::uint32_t magic = 0x49504346;  // "IPCF"
inline constexpr std::uint32_t version = 1;

/// The first datagram, from the client that started the server (encoded by ipc::codec): the
/// functions to run before serving.
struct Setup {
    std::uint32_t magic = forkserver::magic;
    std::uint32_t version = forkserver::version;
    std::vector<CodeRef> preload;

    template <class Archive>
    void serialize(Archive& archive) {
        archive(magic, version, preload);
    }
};

/// The datagram that asks for a child; SCM_RIGHTS: {task channel end for the child, status socket end}.
struct Request {
    std::uint32_t magic = forkserver::magic;
    std::uint32_t version = forkserver::version;
};
inline constexpr int request_descriptors = 2;

/// The server's first answer on the status socket; SCM_RIGHTS: {the child's pidfd} when pid > 0.
/// A pid <= 0 is minus the errno of the fork that failed.
struct Started {
    std::int32_t pid = 0;
};

/// The server's last answer on the status socket: the child's wait(2) status, then it closes.
struct Ended {
    std::int32_t wait_status = 0;
};

}  // namespace ipc::detail::forkserver
