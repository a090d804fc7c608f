// Rings that another process wrote over (issue 21 row 7): a record or position that breaks the
// protocol is a CorruptSegmentError naming the object, for the process that finds it and for every
// other user after it, and a ring whose recorded size disagrees with its segment is refused on
// open; random writes into a Queue's segment never crash or hang its users.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <string>

#include "harness.hpp"
#include "ipc/connection.hpp"
#include "ipc/detail/ring.hpp"
#include "ipc/queues.hpp"
#include "shm/segment_header.hpp"

using namespace std::chrono_literals;
using ipc::detail::RecordHeader;
using ipc::detail::RingState;
namespace test = ipc::test;

namespace {

constexpr std::uint64_t ring_bytes = 4096;

/// The one segment this process made since `before` (a listing of /dev/shm).
std::string new_segment(const std::set<std::string>& before) {
    const auto prefix = "ipc_" + std::to_string(::getpid()) + "_";
    std::string found;
    for (const auto& entry : test::directory_entries("/dev/shm"))
        if (!before.contains(entry) && entry.starts_with(prefix)) {
            REQUIRE(found.empty());
            found = entry;
        }
    REQUIRE(!found.empty());
    return found;
}

/// Another process's mapping of a whole segment, to write over it behind the library's back.
class RawSegment {
public:
    explicit RawSegment(const std::string& name) {
        const int fd = ::open(("/dev/shm/" + name).c_str(), O_RDWR | O_CLOEXEC);
        REQUIRE(fd >= 0);
        struct stat info{};
        REQUIRE(::fstat(fd, &info) == 0);
        size_ = static_cast<std::size_t>(info.st_size);
        base_ = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ::close(fd);
        REQUIRE(base_ != MAP_FAILED);
    }
    ~RawSegment() { ::munmap(base_, size_); }
    RawSegment(const RawSegment&) = delete;
    RawSegment& operator=(const RawSegment&) = delete;

    [[nodiscard]] std::span<std::byte> payload() const {
        const auto* header = static_cast<const ipc::detail::SegmentHeader*>(base_);
        return {static_cast<std::byte*>(base_) + ipc::detail::segment_payload_offset, header->payload_size};
    }
    /// The last ring of the payload (a Queue's only ring; a one-way Pipe's only ring).
    [[nodiscard]] RingState& last_ring() const {
        return *reinterpret_cast<RingState*>(payload().data() + payload().size() - RingState::size_for(ring_bytes));
    }
    [[nodiscard]] RecordHeader& record_at_head() const {
        auto& ring = last_ring();
        return *reinterpret_cast<RecordHeader*>(ring.data() + (ring.head.load() & (ring_bytes - 1)));
    }

private:
    void* base_ = nullptr;
    std::size_t size_ = 0;
};

/// A user of the queue in another process: 3 when it is told the queue is corrupt.
int get_expecting_corrupt(ipc::Queue<std::vector<int>> queue) {
    try {
        (void)queue.get(true, test::bound);
        return 1;
    } catch (const ipc::CorruptSegmentError&) {
        return 3;
    } catch (const ipc::Error&) {
        return 2;
    }
}

}  // namespace

TEST_CASE("a Queue whose ring another process wrote over tells every user it is corrupt", "[corruption]") {
    IPC_EACH_START_METHOD(method);
    const auto before = test::directory_entries("/dev/shm");
    ipc::Queue<std::vector<int>> queue(0, ring_bytes);
    const auto name = new_segment(before);
    queue.put({1, 2, 3});
    RawSegment raw(name);
    std::string expected;
    SECTION("a record's chunk beyond the ring") {
        raw.record_at_head().chunk = 1 << 20;
        expected = "impossible chunk size";
    }
    SECTION("a whole message's total of 2^62 bytes") {
        raw.record_at_head().total = std::uint64_t{1} << 62;
        expected = "impossible size of a message in one piece";
    }
    SECTION("flags no sender writes") {
        raw.record_at_head().flags = 0x41;
        expected = "impossible flags";
    }
    SECTION("a head ahead of the tail") {
        auto& ring = raw.last_ring();
        ring.head.store(ring.tail.load() + 64);
        expected = "are not within the ring";
    }
    SECTION("a tail two rings beyond the head") {
        auto& ring = raw.last_ring();
        ring.tail.store(ring.head.load() + 2 * ring_bytes);
        expected = "are not within the ring";
    }
    const auto message = test::error_of<ipc::CorruptSegmentError>([&] { (void)queue.get(true, test::bound); });
    CHECK_THAT(message, Catch::Contains(expected) && Catch::Contains("Queue '" + name + "'"));
    // Every other user is told too, instead of getting or losing messages.
    CHECK_THROWS_AS(queue.put({4}), ipc::CorruptSegmentError);
    CHECK(test::run(method, get_expecting_corrupt, queue) == 3);
}

TEST_CASE("a Pipe whose ring another process wrote over is a CorruptSegmentError on recv and poll is ready",
          "[corruption]") {
    const auto before = test::directory_entries("/dev/shm");
    auto [reader, writer] = ipc::Pipe(false, ring_bytes);
    const auto name = new_segment(before);
    writer.send_bytes(std::vector<std::byte>(100));
    RawSegment(name).record_at_head().chunk = 3000;
    CHECK(reader.poll(test::bound));
    const auto message = test::error_of<ipc::CorruptSegmentError>([&] { (void)reader.recv_bytes(); });
    CHECK_THAT(message, Catch::Contains("Connection '" + name + "' end 0"));
    CHECK(reader.poll());  // and stays so: the next recv says the same
    CHECK_THROWS_AS(writer.send_bytes(std::vector<std::byte>(1)), ipc::CorruptSegmentError);
}

TEST_CASE("a padding record that does not end at the ring's end or fills half of it is a CorruptSegmentError",
          "[corruption][loans]") {
    // What a loan's padding may be: whole lines up to the ring's end, less than half the ring.
    const std::uint64_t total = GENERATE(std::uint64_t{0}, std::uint64_t{100}, std::uint64_t{128}, ring_bytes / 2 + 64,
                                         ring_bytes);
    INFO("padding total " << total);
    const auto before = test::directory_entries("/dev/shm");
    auto [reader, writer] = ipc::Pipe(false, ring_bytes);
    const auto name = new_segment(before);
    writer.send_bytes(std::vector<std::byte>(100));
    {
        RawSegment raw(name);
        auto& record = raw.record_at_head();
        record.chunk = 0;
        record.flags = RecordHeader::padding;
        record.total = total;
    }
    REQUIRE(reader.poll(test::bound));  // ready: the recv that follows reports the damage
    const auto message = test::error_of<ipc::CorruptSegmentError>([&] { (void)reader.recv_bytes(); });
    CHECK_THAT(message, Catch::Contains("corrupt"));
    CHECK_THROWS_AS(writer.send_bytes(std::vector<std::byte>(1)), ipc::CorruptSegmentError);
}

TEST_CASE("a Pipe whose ring another process marked shut down is a CorruptSegmentError on send and recv",
          "[corruption][shutdown]") {
    const auto before = test::directory_entries("/dev/shm");
    auto [reader, writer] = ipc::Pipe(false, ring_bytes);
    const auto name = new_segment(before);
    RawSegment(name).last_ring().shut_down.store(1);
    CHECK(reader.poll(test::bound));
    const auto message = test::error_of<ipc::CorruptSegmentError>([&] { (void)reader.recv_bytes(); });
    CHECK_THAT(message, Catch::Contains("Connection '" + name + "' end 0") && Catch::Contains("shut down"));
    CHECK_THROWS_AS(writer.send_bytes(std::vector<std::byte>(1)), ipc::CorruptSegmentError);
    CHECK_THROWS_AS(writer.send_bytes(std::vector<std::byte>(3 * ring_bytes)), ipc::CorruptSegmentError);
}

TEST_CASE("a ring whose recorded size disagrees with its segment is refused on open, and open handles carry on",
          "[corruption]") {
    const auto before = test::directory_entries("/dev/shm");
    ipc::Queue<int> queue(0, ring_bytes);
    const auto name = new_segment(before);
    const auto copy = ipc::encode(queue);
    RawSegment raw(name);
    for (const std::uint64_t capacity : {std::uint64_t{0}, std::uint64_t{1} << 30, ring_bytes * 2}) {
        raw.last_ring().capacity = capacity;
        const auto message = test::error_of<ipc::CorruptSegmentError>([&] { (void)ipc::decode<ipc::Queue<int>>(copy); });
        CHECK_THAT(message, Catch::Contains("says it has " + std::to_string(capacity) + " bytes") &&
                                Catch::Contains("Queue '" + name + "'"));
        // This handle checked the size when it was made and uses its own copy of it.
        queue.put(7);
        CHECK(queue.get(true, test::bound) == 7);
    }
}

namespace {

/// A user of a queue that another process may have written over: puts and gets with timeouts.
/// Any ipc::Error is an acceptable answer; a crash (a signal) or a hang is not.
int use_damaged_queue(ipc::Queue<std::vector<int>> queue) {
    for (int i = 0; i < 8; ++i) {
        try {
            queue.put(std::vector<int>(static_cast<std::size_t>(i * 997 % 3000)), true, 50ms);
        } catch (const ipc::Error&) {
        }
        try {
            (void)queue.get(true, 50ms);
        } catch (const ipc::Error&) {
        }
    }
    return 0;
}

}  // namespace

TEST_CASE("random 8-byte writes into a Queue's segment never crash or hang its users", "[corruption]") {
    std::mt19937_64 random(20261205);  // a fixed seed, so that a failure reproduces
    for (int round = 0; round < 40; ++round) {
        INFO("round " << round);
        const auto before = test::directory_entries("/dev/shm");
        ipc::Queue<std::vector<int>> queue(0, ring_bytes);
        const auto name = new_segment(before);
        // Small messages and one that streams (12 KB through a 4 KiB ring is sent in the child).
        for (int i = 0; i < 3; ++i) queue.put(std::vector<int>(static_cast<std::size_t>(10 + i), i));
        {
            RawSegment raw(name);
            const auto payload = raw.payload();
            // Every other round hits the queue's and the ring's fields rather than message bytes.
            const auto fields = payload.size() - ring_bytes;
            const auto offset = (random() % ((round % 2 == 0 ? fields : payload.size()) / 8)) * 8;
            const auto bytes = random();
            std::memcpy(payload.data() + offset, &bytes, sizeof bytes);
        }
        CHECK(test::run(ipc::StartMethod::fork, use_damaged_queue, queue) == 0);
    }
}
