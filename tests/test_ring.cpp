// The ring on its own (THE PROTOCOL in ipc/detail/ring.hpp), driven through ring_send and
// ring_receive rather than Pipe or Queue: records across the ring's end, messages larger than the
// ring, abort records, senders and receivers killed in the middle of a message, refusals, end of file.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "ipc/detail/ring.hpp"
#include "ipc/shared_memory.hpp"
#include "shm/holders.hpp"

using namespace std::chrono_literals;
using ipc::Process;
using ipc::SharedMemory;
using ipc::detail::Deadline;
using ipc::detail::FastPath;
using ipc::detail::Holders;
using ipc::detail::Received;
using ipc::detail::RingResult;
using ipc::detail::Ring;
using ipc::detail::RingState;
namespace test = ipc::test;

namespace {

constexpr std::uint64_t small_ring = 4096;

/// A ring in shared memory, with the holders of its sending end, that a child reaches by fork or spawn.
struct RingBlock {
    SharedMemory block;

    explicit RingBlock(std::uint64_t capacity = small_ring)
        : block(sizeof(Holders) + RingState::size_for(capacity)), ring_(construct(block, capacity)) {}
    explicit RingBlock(SharedMemory existing)
        : block(std::move(existing)), ring_(Ring::open(area(block), "test ring")) {}
    [[nodiscard]] Holders& senders() const { return *reinterpret_cast<Holders*>(block.buf().data()); }
    [[nodiscard]] const Ring& ring() const { return ring_; }

private:
    /// The ring's own bytes in a block (SharedMemory may round its size up).
    static std::span<std::byte> area(const SharedMemory& block) {
        const auto capacity = reinterpret_cast<const RingState*>(block.buf().data() + sizeof(Holders))->capacity;
        return block.buf().subspan(sizeof(Holders), RingState::size_for(capacity));
    }
    static Ring construct(SharedMemory& block, std::uint64_t capacity) {
        new (block.buf().data()) Holders{};
        return {*new (block.buf().data() + sizeof(Holders)) RingState(capacity, 0), "test ring"};
    }
    Ring ring_;
};

/// Message `index` of `size` bytes: every byte depends on both, so a torn, shifted or swapped
/// message never passes for another.
std::vector<std::byte> message(std::uint32_t index, std::size_t size) {
    std::vector<std::byte> bytes(size);
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::byte>((index * 131 + i * 7 + (i >> 8)) & 0xff);
    return bytes;
}

RingResult send(const Ring& ring, const std::vector<std::byte>& bytes, const Deadline& deadline = Deadline::after(test::bound)) {
    return ipc::detail::ring_send(ring, {std::span<const std::byte>(bytes)}, deadline, nullptr);
}

Received receive(const Ring& ring, std::vector<std::byte>& out, const Deadline& deadline = Deadline::after(test::bound),
                 const Holders* senders = nullptr) {
    return ipc::detail::ring_receive(ring, out, deadline, senders, ~std::uint64_t{0});
}

/// Sends the three messages of the streaming test: larger than the ring, tiny, and larger again.
int send_large(SharedMemory block) {
    RingBlock shared(std::move(block));
    for (std::uint32_t index : {1u, 2u, 3u}) {
        const std::size_t size = index == 2 ? 1 : index * 50'000 + 17;
        if (send(shared.ring(), message(index, size)) != RingResult::done) return 10 + static_cast<int>(index);
    }
    return 0;
}

/// Starts a message far larger than the ring that nobody reads, so it stays in the middle of it.
int send_and_stall(SharedMemory block) {
    RingBlock shared(std::move(block));
    send(shared.ring(), message(1, 8 << 20), Deadline::never());
    return 1;  // never reached: the test kills it
}

/// Streams a huge message, then a small one, for the killed-receiver test.
int send_huge_then_small(SharedMemory block) {
    RingBlock shared(std::move(block));
    if (send(shared.ring(), message(1, 16 << 20), Deadline::never()) != RingResult::done) return 2;
    return send(shared.ring(), message(2, 100)) == RingResult::done ? 0 : 3;
}

/// Receives until killed.
int receive_forever(SharedMemory block) {
    RingBlock shared(std::move(block));
    std::vector<std::byte> out;
    for (;;) receive(shared.ring(), out, Deadline::never());
}

bool wait_until(auto condition) { return test::eventually(condition); }

}  // namespace

TEST_CASE("ring: records of every size cross the ring's end intact, by the fast path and the general one", "[ring]") {
    RingBlock shared;
    auto& ring = shared.ring();
    const std::size_t sizes[] = {0, 1, 15, 16, 17, 47, 48, 63, 64, 65, 100, 500, 1000, 1919, 1920};
    REQUIRE(ipc::detail::ring_max_unstreamed(ring) == 1920);  // the largest that does not stream
    std::uint32_t index = 0;
    int fast = 0, declined = 0, fast_receives = 0;
    std::vector<std::byte> out;
    auto take = [&](const ipc::detail::RecordView& view) {
        out.resize(view.size);
        view.copy(0, out.data(), view.size);
        return true;
    };
    for (int lap = 0; lap < 200; ++lap) {
        // A few messages at once (up to half the ring), then all of them back, in order.
        std::vector<std::vector<std::byte>> in_flight;
        std::size_t bytes = 0;
        for (std::size_t size : sizes) {
            const auto size_now = (size + static_cast<std::size_t>(lap)) % 1921;
            if (bytes + ipc::detail::record_footprint(size_now) > small_ring / 2) break;
            bytes += ipc::detail::record_footprint(size_now);
            auto bytes_in = message(++index, size_now);
            const ipc::detail::BytesMessage view{bytes_in};
            if (ipc::detail::ring_send_fast(ring, view) != FastPath::not_taken) {
                ++fast;
            } else {
                ++declined;
                REQUIRE(send(ring, bytes_in) == RingResult::done);
            }
            in_flight.push_back(std::move(bytes_in));
        }
        for (const auto& expected : in_flight) {
            if (lap % 2 == 1 && ipc::detail::ring_receive_fast(ring, ~std::uint64_t{0}, take) != FastPath::not_taken)
                ++fast_receives;
            else
                REQUIRE(receive(ring, out).result == RingResult::done);
            REQUIRE(out == expected);
        }
    }
    CHECK(fast > 0);
    CHECK(fast_receives > 0);
    CHECK(declined > 0);  // a record that would wrap, or the first send of all
    CHECK(ring->tail.load() > 50 * small_ring);  // it went round the ring many times
    CHECK(ring->head.load() == ring->tail.load());
    CHECK(ring->sent.load() == index);
    CHECK(ring->received.load() == index);
}

TEST_CASE("ring: a message larger than the ring streams through it whole, followed by others", "[ring]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    RingBlock shared;
    Process sender({.start_method = method}, send_large, shared.block);
    test::Reaper reaper(sender);
    sender.start();
    std::vector<std::byte> out;
    for (std::uint32_t index : {1u, 2u, 3u}) {
        const std::size_t size = index == 2 ? 1 : index * 50'000 + 17;
        const auto received = receive(shared.ring(), out);
        REQUIRE(received.result == RingResult::done);
        CHECK(received.size == size);
        CHECK(out == message(index, size));
    }
    CHECK(test::join_bounded(sender) == 0);
    CHECK(shared.ring()->received.load() == 3);
}

TEST_CASE("ring: a sender that gives up halfway closes its message with an abort record", "[ring]") {
    RingBlock shared;
    auto& ring = shared.ring();
    // Nobody reads: the stream stops when the ring is full, and the deadline passes.
    CHECK(send(ring, message(1, 10'000), Deadline::after(20ms)) == RingResult::timed_out);
    CHECK(ring->tail.load() > 0);  // its first chunks went out
    CHECK(ring->streaming.load() == 0);
    CHECK(ring->sent.load() == 0);
    // The receiver reads the chunks, meets the abort record and drops them at once: nothing to
    // deliver, and nothing left unfinished for its next receive (its deadline comes before the
    // first liveness look, which would also have found that nobody streams any more).
    std::vector<std::byte> out;
    CHECK(receive(ring, out, Deadline::after(5ms)).result == RingResult::timed_out);
    CHECK(ring->head.load() == ring->tail.load());
    CHECK(ring.unfinished().thread.load() == 0);
    // The next message arrives whole.
    REQUIRE(send(ring, message(2, 300)) == RingResult::done);
    REQUIRE(receive(ring, out).result == RingResult::done);
    CHECK(out == message(2, 300));
}

namespace {
/// Publishes a record of `chunk` zero bytes as a sender would (the caller holds the send lock).
void publish_record(const Ring& ring, std::uint32_t flags, std::uint32_t chunk, std::uint64_t total) {
    using ipc::detail::RecordHeader;
    const auto tail = ring->tail.load();
    const RecordHeader header{chunk, flags, total};
    ipc::detail::copy_in(ring, tail, &header, sizeof header);
    const std::vector<std::byte> zeros(chunk);
    ipc::detail::copy_in(ring, tail + sizeof header, zeros.data(), zeros.size());
    ipc::detail::publish_records(ring, tail + ipc::detail::record_footprint(chunk),
                                 ring->sent.load() + ((flags & RecordHeader::last) ? 1 : 0));
}
}  // namespace

TEST_CASE("ring: poll is true for a whole message, or one begun whose sender waits for room, not for a part",
          "[ring]") {
    using ipc::detail::RecordHeader;
    RingBlock shared;
    auto& ring = shared.ring();
    auto ready = [&] { return ipc::detail::ring_poll(ring, Deadline::after({}), nullptr); };
    std::vector<std::byte> out;
    // This thread plays a live sender in the middle of its messages.
    REQUIRE(ipc::detail::enter_ring_lock(ring->send_lock, true, Deadline::after(test::bound)) == ipc::detail::Acquired::yes);
    ring->streaming.store(1);
    // Every chunk but the last is full: the largest record that does not stream.
    const auto full = static_cast<std::uint32_t>(ipc::detail::ring_max_unstreamed(ring));
    publish_record(ring, RecordHeader::first, full, full + 500);
    CHECK_FALSE(ready());  // a part, with room for the rest
    publish_record(ring, RecordHeader::last, 500, full + 500);
    CHECK(ready());
    REQUIRE(receive(ring, out).result == RingResult::done);
    CHECK(out.size() == full + 500);

    publish_record(ring, RecordHeader::first, full, 9000);
    publish_record(ring, 0, full, 9000);
    CHECK(ready());  // the ring is too full for the rest: only a receive lets the sender go on

    SECTION("a part whose sender stopped streaming without its last chunk is dropped") {
        ring->streaming.store(0);
        CHECK_FALSE(ready());
        CHECK(ring->head.load() == ring->tail.load());
    }
    SECTION("a part followed by an abort record is dropped with it") {
        publish_record(ring, RecordHeader::abort, 0, 0);
        ring->streaming.store(0);
        CHECK_FALSE(ready());
        CHECK(ring->head.load() == ring->tail.load());
    }
    ipc::detail::exit_ring_lock(ring->send_lock);
}

TEST_CASE("ring: an immediate receive does not wait for the rest of a message whose send lock is free",
          "[ring]") {
    // The streaming flag says a message is on its way, but no sender holds the lock: nobody streams
    // it (found by fuzz_ring, where the receive waited forever).
    using ipc::detail::RecordHeader;
    RingBlock shared;
    auto& ring = shared.ring();
    ring->streaming.store(1);
    publish_record(ring, RecordHeader::first, static_cast<std::uint32_t>(ipc::detail::ring_max_unstreamed(ring)), 9000);
    std::vector<std::byte> out;
    const auto received = ipc::detail::ring_receive(ring, out, Deadline::after({}), nullptr, ~std::uint64_t{0},
                                                    ipc::detail::RingWait::immediate);
    CHECK(received.result == RingResult::timed_out);
    CHECK(ring->head.load() == ring->tail.load());  // the part was dropped
}

TEST_CASE("ring: a sender killed halfway leaves no torn message, whoever comes next", "[ring]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    RingBlock shared;
    auto& ring = shared.ring();
    Process sender({.start_method = method}, send_and_stall, shared.block);
    test::Reaper reaper(sender);
    sender.start();
    // Two chunks fit into the 4 KiB ring; then the sender waits for room, inside the message.
    REQUIRE(wait_until([&] { return ring->streaming.load() == 1 && ring->tail.load() >= 2 * 1984; }));
    sender.kill();
    CHECK(test::join_bounded(sender) == -SIGKILL);
    std::vector<std::byte> out;

    SECTION("the receiver comes first: it drops the chunks once it sees the sender dead") {
        CHECK(receive(ring, out, Deadline::after(300ms)).result == RingResult::timed_out);
        REQUIRE(send(ring, message(2, 100)) == RingResult::done);  // takes the lock over
        REQUIRE(receive(ring, out).result == RingResult::done);
        CHECK(out == message(2, 100));
    }
    SECTION("the next sender comes first: it closes the dead one's message with an abort record") {
        // The dead sender's chunks fill the ring: the new one writes the abort record, then
        // waits for room for its own message, which the receive below makes.
        RingResult sent = RingResult::timed_out;
        std::thread next_sender([&] { sent = send(ring, message(2, 100)); });
        CHECK(wait_until([&] { return ring->streaming.load() == 0; }));
        const auto received = receive(ring, out);
        next_sender.join();
        CHECK(sent == RingResult::done);
        REQUIRE(received.result == RingResult::done);
        CHECK(out == message(2, 100));
    }
    CHECK(ring->waiting() == 0);
    CHECK(ring->head.load() == ring->tail.load());
}

TEST_CASE("ring: a receiver killed halfway through a message costs that message only", "[ring]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    RingBlock shared;
    auto& ring = shared.ring();
    Process sender({.start_method = method}, send_huge_then_small, shared.block);
    Process receiver({.start_method = method}, receive_forever, shared.block);
    test::Reaper reap_sender(sender), reap_receiver(receiver);
    sender.start();
    receiver.start();
    // Freeze the sender in the middle of its 16 MiB message, let the receiver take all there
    // is, and kill the receiver while it waits for the rest.
    REQUIRE(wait_until([&] { return ring->head.load() >= 64 * small_ring; }));
    REQUIRE(::kill(*sender.pid(), SIGSTOP) == 0);
    REQUIRE(wait_until([&] { return ring->head.load() == ring->tail.load(); }));
    CHECK(ipc::detail::ring_lock_owner(ring->receive_lock) == static_cast<std::uint32_t>(*receiver.pid()));
    receiver.kill();
    CHECK(test::join_bounded(receiver) == -SIGKILL);
    REQUIRE(::kill(*sender.pid(), SIGCONT) == 0);
    // This receiver takes the lock over, drops the rest of the huge message, and gets the next whole.
    std::vector<std::byte> out;
    const auto received = receive(ring, out);
    REQUIRE(received.result == RingResult::done);
    CHECK(out == message(2, 100));
    CHECK(test::join_bounded(sender) == 0);
    CHECK(ring->waiting() == 0);
}

TEST_CASE("ring: a message larger than the receiver allows is refused and stays", "[ring]") {
    RingBlock shared;
    auto& ring = shared.ring();
    REQUIRE(send(ring, message(1, 100)) == RingResult::done);
    std::vector<std::byte> out;
    const auto refused = ipc::detail::ring_receive(ring, out, Deadline::after(1s), nullptr, 99);
    CHECK(refused.result == RingResult::done);
    CHECK(refused.refused);
    CHECK(refused.size == 100);
    CHECK(ring->waiting() == 1);
    const auto taken = ipc::detail::ring_receive(ring, out, Deadline::after(1s), nullptr, 100);
    CHECK_FALSE(taken.refused);
    CHECK(out == message(1, 100));
}

TEST_CASE("ring: end of file once no process holds the sending end, not before", "[ring]") {
    RingBlock shared;
    auto& ring = shared.ring();
    auto& senders = shared.senders();
    std::vector<std::byte> out;
    REQUIRE(senders.add(ipc::detail::this_process_id(), ipc::detail::this_process_birth()));
    CHECK(receive(ring, out, Deadline::after(30ms), &senders).result == RingResult::timed_out);
    // A message sent before the end was let go is still delivered; then end of file.
    REQUIRE(send(ring, message(1, 10)) == RingResult::done);
    senders.remove(ipc::detail::this_process_id());
    CHECK(receive(ring, out, Deadline::after(1s), &senders).result == RingResult::done);
    CHECK(receive(ring, out, Deadline::after(test::bound), &senders).result == RingResult::peer_gone);
    CHECK_FALSE(ipc::detail::ring_poll(ring, Deadline::after(0s), nullptr));
}
