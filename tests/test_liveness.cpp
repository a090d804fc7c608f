// Liveness (shm/liveness.hpp): who counts as alive, and an id given to a new process that never
// passes for the dead holder it replaced — for lock owners, ring lock owners and channel-end holders.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "harness.hpp"
#include "ipc/detail/lock_word.hpp"
#include "ipc/detail/ring_lock.hpp"
#include "ipc/detail/thread_id.hpp"
#include "shm/holders.hpp"
#include "shm/liveness.hpp"
#include "sync/lock_sleeper.hpp"

using namespace std::chrono_literals;
using ipc::detail::Acquired;
using ipc::detail::Deadline;
namespace detail = ipc::detail;
namespace test = ipc::test;

namespace {
/// Another birth than `birth`: what a new process given the same id would have.
detail::Birth another_birth(detail::Birth birth) { return birth + 1 == 0 ? 1 : birth + 1; }

/// Takes `word` from a thread of its own (another owner id than this thread's).
Acquired acquire_from_another_thread(detail::LockWord& word, std::chrono::milliseconds limit) {
    Acquired result = Acquired::timed_out;
    std::thread([&] { result = detail::acquire_lock(word, detail::this_thread_id(), true, Deadline::after(limit)); }).join();
    return result;
}
}  // namespace

TEST_CASE("liveness: this process and its threads live, and an ended child does not, reaped or a zombie", "[liveness]") {
    CHECK(detail::alive(detail::this_process_id(), detail::this_process_birth()));
    CHECK(detail::alive(detail::this_thread_id(), detail::this_thread_birth()));
    CHECK(detail::alive(detail::this_process_id()));  // birth 0: the id alone
    std::thread([] { CHECK(detail::alive(detail::this_thread_id(), detail::this_thread_birth())); }).join();
    CHECK_FALSE(detail::alive(detail::this_process_id(), another_birth(detail::this_process_birth())));

    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    REQUIRE(child > 0);
    // Until it is reaped the child is a zombie, which counts as gone.
    CHECK(test::eventually([&] { return !detail::alive(static_cast<std::uint32_t>(child)); }));
    CHECK(detail::birth_of(static_cast<std::uint32_t>(child)) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK_FALSE(detail::alive(static_cast<std::uint32_t>(child)));
}

TEST_CASE("liveness: a lock held under a reused id is taken over as its owner's death", "[liveness][locks]") {
    detail::LockWord word;
    // Held by this very process (alive), but recorded with another birth: the holder that took it
    // died, and its id now names this process.
    word.state.store(detail::this_process_id());
    detail::record_birth(word, detail::this_process_id(), another_birth(detail::this_process_birth()));
    CHECK(acquire_from_another_thread(word, test::bound) == Acquired::owner_died);
    CHECK(detail::release_lock(word));

    // The same, recorded with this process's own birth: a live holder, so the wait times out.
    word.state.store(detail::this_process_id());
    detail::record_birth(word, detail::this_process_id(), detail::this_process_birth());
    CHECK(acquire_from_another_thread(word, 50ms) == Acquired::timed_out);
    CHECK(detail::release_lock(word));
    CHECK(word.owner_birth.load() == 0);  // forgotten when freed
    CHECK(word.birth_owner.load() == 0);
}

TEST_CASE("liveness: a holder that has not recorded its birth yet is not judged by its predecessor's",
          "[liveness][locks]") {
    // Just taken over (from a dead holder, or from a ring lock's resting owner): the state names the
    // new holder, a live process, while the birth recorded is still the previous holder's. Judged
    // by that birth the new holder would pass for dead, and a third waiter would take the lock
    // from it: two holders at once (seen as two receivers of one Queue on a busy machine).
    detail::LockWord word;
    const auto previous = detail::this_process_id() + 1;
    detail::record_birth(word, previous, another_birth(detail::this_process_birth()));
    word.state.store(detail::this_process_id());
    CHECK(acquire_from_another_thread(word, 50ms) == Acquired::timed_out);

    detail::RingLock lock;
    detail::record_birth(lock.word, previous, another_birth(detail::this_process_birth()));
    lock.word.state.store(detail::this_process_id());
    Acquired result = Acquired::yes;
    std::thread([&] { result = detail::enter_ring_lock(lock, true, Deadline::after(50ms)); }).join();
    CHECK(result == Acquired::timed_out);
}

TEST_CASE("liveness: a ring lock resting on a reused id is taken over", "[liveness][ring_lock]") {
    detail::RingLock lock;
    lock.word.state.store(detail::this_process_id() | detail::RingLock::resting_bit);
    detail::record_birth(lock.word, detail::this_process_id(), another_birth(detail::this_process_birth()));
    lock.busy.store(1);  // it died inside a call
    Acquired result = Acquired::timed_out;
    std::thread([&] {
        result = detail::enter_ring_lock(lock, true, Deadline::after(test::bound));
        if (result != Acquired::timed_out) detail::exit_ring_lock(lock);
    }).join();
    CHECK(result == Acquired::owner_died);
}

TEST_CASE("liveness: a channel-end slot under a reused id does not hold the end", "[liveness]") {
    detail::Holders holders{};
    const auto me = detail::this_process_id();
    REQUIRE(holders.add(me, another_birth(detail::this_process_birth())));
    CHECK(holders.first_listed() != nullptr);  // listed, which costs nothing to see
    CHECK_FALSE(holders.any_alive());          // but not alive, which a look at /proc tells
    holders.remove(me);
    CHECK(holders.first_listed() == nullptr);

    // Every slot taken by such stale holders: a live process still gets one.
    for (auto& slot : holders.slot) slot.store(detail::pack_holder(me, another_birth(detail::this_process_birth())));
    REQUIRE(holders.add(me, detail::this_process_birth()));
    CHECK(holders.any_alive());
    CHECK_FALSE(holders.any_alive(me));  // except ourselves
}
