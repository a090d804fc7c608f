// examples/zero_copy_frames.cpp — a renderer process writes video-sized frames straight into the
// Pipe's shared memory (a loan) and the parent reads each one where it lies (a view): one copy
// fewer each way than send_bytes/recv_bytes. Python has no counterpart; iceoryx2 calls these loans.
//
//   usage: zero_copy_frames [fork|spawn|forkserver]
#include <cstddef>
#include <cstdint>
#include <iostream>
#include <numeric>
#include <span>

#include <ipc/ipc.hpp>

constexpr std::size_t frame_bytes = 1920 * 1080;  // one 8-bit plane of a 1080p frame
constexpr int frames = 60;

/// What a renderer would draw: frame `n` is every byte set to n.
void render(std::span<std::byte> frame, int n) {
    for (auto& pixel : frame) pixel = static_cast<std::byte>(n);
}

void renderer(ipc::Connection out) {
    for (int n = 0; n < frames; ++n) {
        auto loan = out.loan(frame_bytes);  // room inside the ring, waited for as a send waits
        render(loan.bytes(), n);            // written in place: no buffer of our own
        out.send(std::move(loan));          // published where it is
    }
}

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    const auto method = ipc::parse_start_method(argc > 1 ? argv[1] : "fork");

    // A loan takes at most half the ring: 8 MiB holds 2 frames in flight.
    auto [frames_in, frames_out] = ipc::Pipe(false, std::size_t{8} << 20);
    ipc::Process p({.start_method = method}, renderer, frames_out);
    p.start();
    frames_out.close();

    int correct = 0, in_place = 0;
    for (int n = 0; n < frames; ++n) {
        const auto frame = frames_in.recv_view();  // read where it lies, until `frame` is dropped
        const auto sum = std::accumulate(frame.bytes().begin(), frame.bytes().end(), std::uint64_t{0},
                                         [](std::uint64_t total, std::byte b) { return total + std::to_integer<unsigned>(b); });
        if (frame.size() == frame_bytes && sum == std::uint64_t(n % 256) * frame_bytes) ++correct;
        if (frame.in_place()) ++in_place;
    }
    p.join();
    std::cout << correct << " of " << frames << " frames correct, " << in_place << " read in place\n"
              << "renderer exit code " << *p.exitcode() << '\n';
}
