// The sticky ring lock under Pipe and Queue: mutual exclusion while a resting owner and newcomers
// race for it (the handshake that replaces a locked instruction per message), take-over of an idle
// or dead resting owner, and receivers that go to sleep between bursts and are always woken.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <new>
#include <thread>

#include "harness.hpp"
#include "ipc/connection.hpp"
#include "ipc/detail/ring_lock.hpp"
#include "ipc/queues.hpp"
#include "ipc/shared_memory.hpp"
#include "sys/spin.hpp"

using namespace std::chrono_literals;
using ipc::Process;
using ipc::SharedMemory;
using ipc::detail::Acquired;
using ipc::detail::Deadline;
using ipc::detail::RingLock;
namespace test = ipc::test;

namespace {

/// One lock per round, so that every round races a fresh sticky lock into its shared mode.
struct Round {
    RingLock lock;
    alignas(64) std::uint64_t counter = 0;  // guarded by `lock`, deliberately not atomic
    std::atomic<std::uint64_t> done{0};     // the increments made, counted atomically
};
constexpr int rounds = 256;
constexpr std::uint64_t increments = 2000;  // per round, by whoever gets there

struct Arena {
    std::atomic<std::uint32_t> arrived{0};
    Round round[rounds];
};

Arena& arena(const SharedMemory& block) { return *reinterpret_cast<Arena*>(block.buf().data()); }

SharedMemory make_arena() {
    SharedMemory block(sizeof(Arena));
    new (block.buf().data()) Arena{};
    return block;
}

/// A read-modify-write that loses updates unless the lock excludes the others.
void increment_under(Round& round) {
    round.done.fetch_add(1);
    if (ipc::detail::enter_ring_lock(round.lock, true, Deadline::after(test::bound)) == Acquired::timed_out)
        throw std::runtime_error("ring lock not taken within the bound");
    const auto seen = round.counter;
    for (int i = 0; i < 4; ++i) ipc::detail::cpu_relax();  // a window as long as a message's copy
    round.counter = seen + 1;
    ipc::detail::exit_ring_lock(round.lock);
}

/// Waits until `parties` processes arrived, then runs every round: all of them keep at a round
/// until it has all its increments, so that they overlap on every fresh lock.
int hammer(SharedMemory block, std::uint32_t parties) {
    auto& shared = arena(block);
    shared.arrived.fetch_add(1);
    const auto until = std::chrono::steady_clock::now() + test::bound;
    while (shared.arrived.load() < parties)
        if (std::chrono::steady_clock::now() > until) return 2;
    for (auto& round : shared.round)
        while (round.done.load() < increments) increment_under(round);
    return 0;
}

int take_once(SharedMemory block) {
    auto& round = arena(block).round[0];
    const auto acquired = ipc::detail::enter_ring_lock(round.lock, false, Deadline::after(0s));
    if (acquired != Acquired::yes) return 3;
    ++round.counter;
    ipc::detail::exit_ring_lock(round.lock);
    return 0;
}

/// Rests on the lock, inside a call or between calls, and dies without letting go.
[[noreturn]] void die_holding(SharedMemory block, bool inside_a_call) {
    auto& round = arena(block).round[0];
    ipc::detail::enter_ring_lock(round.lock, true, Deadline::never());
    if (!inside_a_call) ipc::detail::exit_ring_lock(round.lock);
    ::kill(::getpid(), SIGKILL);
    std::abort();
}

/// Sends bursts with pauses longer than a receiver's spin, so that it sleeps before most bursts.
void send_bursts(ipc::Connection writer, int bursts) {
    for (int burst = 0; burst < bursts; ++burst) {
        const auto resume = std::chrono::steady_clock::now() + 40us;
        while (std::chrono::steady_clock::now() < resume) {
        }
        for (int i = 0; i < 3; ++i) writer.send(burst * 3 + i);
    }
}

}  // namespace

TEST_CASE("a sticky ring lock excludes while processes race it into its shared mode", "[ring_lock]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    auto block = make_arena();
    Process first(ipc::ProcessOptions{.start_method = method}, hammer, block, 3u);
    Process second(ipc::ProcessOptions{.start_method = method}, hammer, block, 3u);
    first.start();
    second.start();
    CHECK(hammer(block, 3) == 0);
    CHECK(test::join_bounded(first) == 0);
    CHECK(test::join_bounded(second) == 0);
    for (const auto& round : arena(block).round) {
        CHECK(round.done.load() >= increments);
        CHECK(round.counter == round.done.load());
    }
}

TEST_CASE("a ring lock's idle resting owner does not hold up another process", "[ring_lock]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    auto block = make_arena();
    auto& round = arena(block).round[0];
    REQUIRE(ipc::detail::enter_ring_lock(round.lock, true, Deadline::after(test::bound)) == Acquired::yes);
    ipc::detail::exit_ring_lock(round.lock);  // this thread now rests on it
    REQUIRE(ipc::detail::ring_lock_owner(round.lock) == ipc::detail::this_thread_id());

    Process other(ipc::ProcessOptions{.start_method = method}, take_once, block);
    other.start();
    CHECK(test::join_bounded(other) == 0);
    CHECK(round.counter == 1);
    // The former owner's next call still excludes: it takes the lock the ordinary way.
    increment_under(round);
    CHECK(round.counter == 2);
    CHECK(ipc::detail::ring_lock_owner(round.lock) == 0);  // shared now: nobody keeps it between calls
}

TEST_CASE("a ring lock whose resting owner died is taken over", "[ring_lock]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    const bool inside_a_call = GENERATE(false, true);
    INFO("died inside a call: " << inside_a_call);
    auto block = make_arena();
    auto& round = arena(block).round[0];
    Process holder(ipc::ProcessOptions{.start_method = method}, die_holding, block, inside_a_call);
    holder.start();
    test::join_bounded(holder);
    const auto acquired = ipc::detail::enter_ring_lock(round.lock, true, Deadline::after(test::bound));
    CHECK(acquired == (inside_a_call ? Acquired::owner_died : Acquired::yes));
    ipc::detail::exit_ring_lock(round.lock);
}

TEST_CASE("a receiver that sleeps between bursts gets every burst, in order", "[ring_lock][connection]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    constexpr int bursts = 1500;
    auto [reader, writer] = ipc::Pipe(false);
    Process sender(ipc::ProcessOptions{.start_method = method}, send_bursts, writer, bursts);
    sender.start();
    writer.close();
    for (int i = 0; i < bursts * 3; ++i) {
        REQUIRE(reader.poll(test::bound));
        REQUIRE(reader.recv<int>() == i);
    }
    CHECK(test::join_bounded(sender) == 0);
}
