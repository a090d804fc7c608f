// tests/fuzz/fuzz_handshake.cpp — libFuzzer target for the Listener/Client handshake (net/handshake.*)
// facing a peer that says anything: the input is the peer's bytes on a socketpair, read by the
// Listener's side or the Client's. A handshake may fail only with an ipc::Error, and within its
// timeout; the peer's end is shut for writing after the input, so a read past it ends at once.
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>

#include "fuzz_support.hpp"
#include "ipc/connection.hpp"
#include "ipc/error.hpp"
#include "ipc/listener.hpp"
#include "net/handshake.hpp"
#include "sys/fd.hpp"

namespace {

using namespace std::chrono_literals;

/// Writes `bytes` into `fd` (all of it: the input is far smaller than a socket's buffer).
void send_all(int fd, std::span<const std::byte> bytes, std::span<const int> descriptors = {}) {
    while (!bytes.empty()) {
        const ssize_t sent = ipc::detail::send_with_descriptors(fd, bytes, descriptors, 0);
        if (sent < 0) std::abort();
        descriptors = {};  // they went with the first byte
        bytes = bytes.subspan(static_cast<std::size_t>(sent));
    }
}

/// Where the last handshake frame (a 32-bit length, then that many bytes) in `bytes` starts.
std::size_t last_frame(std::span<const std::byte> bytes) {
    std::size_t start = 0;
    for (std::size_t at = 0; at + sizeof(std::uint32_t) <= bytes.size();) {
        std::uint32_t length = 0;
        std::memcpy(&length, bytes.data() + at, sizeof length);
        start = at;
        if (length > bytes.size()) break;
        at += sizeof length + length;
    }
    return start;
}

/// Writes the peer's bytes into `fd`; when `with_descriptors`, four eventfds (a Connection's wake-up
/// descriptors) go along with the last frame, as a Listener sends them with its connection message.
void feed(int fd, std::span<const std::byte> bytes, bool with_descriptors) {
    if (!with_descriptors) return send_all(fd, bytes);
    const std::size_t split = last_frame(bytes);
    send_all(fd, bytes.first(split));
    int descriptors[4];
    for (int& descriptor : descriptors) descriptor = ::eventfd(0, EFD_CLOEXEC);
    send_all(fd, bytes.subspan(split), descriptors);
    for (int descriptor : descriptors) ::close(descriptor);
}

}  // namespace

/// The name under which a real Pipe's segment can be opened: a Client side whose input names it
/// gets past opening the segment, to the checks of the rest of the Connection it was handed.
const std::string pipe_name = "fuzz-pipe";

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const auto& folder = ipc::fuzz::use_private_shm_dir();  // the Pipes a Listener side makes go there
    static const auto pipe = ipc::Pipe(true, 4096);
    for (const auto& entry : std::filesystem::directory_iterator(folder))
        if (entry.path().filename().string().starts_with("ipc_"))
            std::filesystem::create_hard_link(entry.path(), folder + "/" + pipe_name);
    return 0;
}

// The first byte steers: bit 0 plays the Client's side (else the Listener's), bit 1 gives both
// sides an authkey, bit 2 hands four descriptors over with the peer's bytes, bit 3 takes the TCP
// way. The rest is the peer's.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t steer = data[0];
    const auto peer_bytes = std::as_bytes(std::span(data + 1, size - 1));
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) std::abort();
    const ipc::detail::Fd ours(ends[0]), peer(ends[1]);
    feed(peer.get(), peer_bytes, (steer & 4) != 0);
    ::shutdown(peer.get(), SHUT_WR);

    const std::optional<std::string> key = (steer & 2) ? std::optional<std::string>("fuzz key") : std::nullopt;
    // The TCP way ends the handshake with the socket itself instead of a new Pipe.
    const ipc::detail::Transport transport{.over_socket = (steer & 8) != 0, .name = "fuzz connection"};
    try {
        if (steer & 1) {
            ipc::ClientOptions options{.authkey = key, .handshake_timeout = 200ms};
            auto connection = ipc::detail::handshake_as_client(ours.get(), "fuzz client", options,
                                                               ipc::detail::Deadline::after(200ms), transport);
        } else {
            ipc::ListenerOptions options{.authkey = key, .handshake_timeout = 200ms, .capacity = 4096};
            auto connection = ipc::detail::handshake_as_listener(ours.get(), "fuzz listener", options, transport);
        }
    } catch (const ipc::Error&) {
    }
    return 0;
}
