// channel/queues.cpp — the untyped Queue: a ring in a segment, a count of unfinished tasks for
// JoinableQueue, and a readiness descriptor for event loops.
#include "ipc/queues.hpp"

#include <algorithm>
#include <limits>
#include <new>

#include "channel/wake_fd.hpp"
#include "ipc/detail/fence.hpp"
#include "ipc/detail/ring.hpp"
#include "sys/futex.hpp"

namespace ipc::detail {

namespace {
/// How long shutdown(immediate=true) waits for the receive lock, which a woken receiver gives up
/// at once.
constexpr auto drop_lock_timeout = std::chrono::milliseconds(100);
}  // namespace

struct alignas(64) QueueState {
    std::atomic<std::uint32_t> unfinished{0};  // JoinableQueue: put() but not task_done()
    std::atomic<std::uint32_t> all_done{0};    // bumped on every 1 -> 0 of `unfinished`; joiners sleep on it
    std::atomic<std::uint32_t> joiners{0};     // how many join() calls may sleep
    std::uint64_t maxsize = 0;
    std::uint64_t capacity = 0;
};

QueueCore::QueueCore(std::size_t maxsize, std::size_t capacity, ElementType type) {
    if (maxsize > std::numeric_limits<std::uint32_t>::max()) throw ValueError("Queue maxsize " + std::to_string(maxsize) + " is too large");
    const auto bytes = RingState::capacity_for(capacity, "Queue");
    segment_ = Segment::create("", Kind::queue, type, sizeof(QueueState) + RingState::size_for(bytes),
                               [&](std::span<std::byte> payload) {
                                   auto* state = new (payload.data()) QueueState{};
                                   state->maxsize = maxsize;
                                   state->capacity = bytes;
                                   new (payload.data() + sizeof(QueueState))
                                       RingState(bytes, static_cast<std::uint32_t>(maxsize));
                               });
    ring_.emplace(*segment_->at<RingState>(sizeof(QueueState)), "Queue '" + segment_->name() + "'");
    wake_ = make_wake_fd("Queue");
}

QueueCore::QueueCore(codec::Reader& reader, ElementType type)
    : segment_(Segment::open(codec::load<std::string>(reader), Kind::queue, type)),
      ring_(Ring::open(segment_->payload_after(sizeof(QueueState), "Queue"), "Queue '" + segment_->name() + "'")) {
    if (codec::load<bool>(reader)) wake_ = duplicate_wake_fd(reader.read_descriptor());
}

thread_local std::vector<std::byte> QueueCore::received_message;

// The ring locks this thread keeps between calls go with the last handle, so the next user
// (another process, say) finds them free.
QueueCore::~QueueCore() {
    if (ring_) ring_let_go(*ring_);
}

void QueueCore::save(codec::Writer& writer) const {
    codec::save(writer, name());
    // Inside a message (not a Process argument) no descriptor can go along: the copy has none.
    const bool with_descriptor = wake_ && writer.carries_descriptors();
    codec::save(writer, with_descriptor);
    if (with_descriptor) writer.write_descriptor(wake_->get(), "a Queue");
}

QueueState& QueueCore::state() const noexcept { return *segment_->at<QueueState>(); }

void QueueCore::signal_pollers() noexcept { signal_wake(wake_); }

void QueueCore::put_general(const MessageParts& message, bool block, const Deadline& deadline, bool count_task) {
    // Counted before the message can be taken, so task_done() never sees it early.
    if (count_task) state().unfinished.fetch_add(1, std::memory_order_relaxed);
    const auto result = ring_send(ring(), message, deadline, nullptr);
    if (result == RingResult::done) {
        if (ring()->pollers.load(std::memory_order_relaxed)) signal_wake(wake_);
        return;
    }
    if (count_task) task_done();
    if (result == RingResult::shut_down) throw ShutDown("put on Queue '" + name() + "': the queue is shut down");
    throw Full(std::string("put on Queue '") + name() + "': " +
               (block ? "still full when the timeout ran out" : "full (and not blocking)"));
}

std::span<const std::byte> QueueCore::get_general(bool block, const Deadline& deadline) {
    auto& buffer = received_message;
    const auto received = ring_receive(ring(), buffer, deadline, nullptr, std::numeric_limits<std::uint64_t>::max());
    if (received.result == RingResult::shut_down) throw_shut_down_empty();
    if (received.result != RingResult::done)
        throw Empty(std::string("get on Queue '") + name() + "': " +
                    (block ? "still empty when the timeout ran out" : "empty (and not blocking)"));
    after_get();
    return buffer;
}

std::optional<std::span<const std::byte>> QueueCore::try_get() {
    thread_local std::vector<std::byte> buffer;
    const auto received = ring_receive(ring(), buffer, Deadline::after({}), nullptr,
                                       std::numeric_limits<std::uint64_t>::max(), RingWait::immediate);
    if (received.result == RingResult::shut_down) throw_shut_down_empty();
    if (received.result != RingResult::done) return std::nullopt;
    after_get();
    return buffer;
}

void QueueCore::throw_shut_down_empty() const {
    throw ShutDown("get on Queue '" + name() + "': the queue is shut down and empty");
}

void QueueCore::shutdown(bool immediate) {
    ring_shut_down(ring());
    // Waiting event loops look, and find the queue shut down (or what is left in it).
    signal_wake(wake_);
    if (!immediate) return;
    // A receiver that holds the lock was woken above and lets go at once; one frozen holding it
    // keeps what waits, and gets it when it goes on (nothing is lost either way).
    const auto dropped = ring_drop_waiting(ring(), Deadline::after(drop_lock_timeout));
    if (!dropped) return;
    // The dropped messages are tasks nobody will finish (Python's shutdown(immediate=True)).
    auto& st = state();
    auto left = st.unfinished.load(std::memory_order_relaxed);
    std::uint32_t after = 0;
    do {
        after = left - static_cast<std::uint32_t>(std::min<std::uint64_t>(left, *dropped));
    } while (left != 0 && !st.unfinished.compare_exchange_weak(left, after, std::memory_order_acq_rel));
    if (left != 0 && after == 0) tasks_all_done();
}

bool QueueCore::is_shut_down() const noexcept { return ring()->shut_down.load(std::memory_order_acquire) != 0; }

void QueueCore::after_get() noexcept {
    if (ring()->pollers.load(std::memory_order_relaxed)) settle_wake(ring(), wake_);
}

int QueueCore::watch() {
    if (!wake_) return -1;
    ring()->pollers.fetch_add(RingState::loop_poller, std::memory_order_seq_cst);
    heavy_fence();  // a put that publishes after our look sees the flag
    // Messages put before anyone polled left no signal: make the state visible now.
    if (ring_poll(ring(), Deadline::after({}), nullptr)) signal_wake(wake_);
    return wake_->get();
}

void QueueCore::unwatch() noexcept {
    if (wake_) ring()->pollers.fetch_sub(RingState::loop_poller, std::memory_order_relaxed);
}

std::size_t QueueCore::qsize() const noexcept { return static_cast<std::size_t>(ring()->waiting()); }
std::size_t QueueCore::maxsize() const noexcept { return static_cast<std::size_t>(state().maxsize); }

void QueueCore::task_done() {
    auto& st = state();
    auto left = st.unfinished.load(std::memory_order_relaxed);
    do {
        if (left == 0) throw ValueError("task_done on Queue '" + name() + "': called more times than items were put");
    } while (!st.unfinished.compare_exchange_weak(left, left - 1, std::memory_order_acq_rel));
    if (left == 1) tasks_all_done();
}

void QueueCore::tasks_all_done() noexcept {
    // Joiners sleep on `all_done`, not on `unfinished`: a put() right after this 1 -> 0 must
    // not leave them asleep on a value that came back.
    auto& st = state();
    st.all_done.fetch_add(1, std::memory_order_seq_cst);
    if (st.joiners.load(std::memory_order_seq_cst) != 0) futex_wake(st.all_done);
}

bool QueueCore::join(const Deadline& deadline) {
    auto& st = state();
    if (st.unfinished.load(std::memory_order_acquire) == 0) return true;
    st.joiners.fetch_add(1, std::memory_order_seq_cst);
    bool done = false;
    for (;;) {
        const auto epoch = st.all_done.load(std::memory_order_seq_cst);
        if (st.unfinished.load(std::memory_order_seq_cst) == 0) {
            done = true;
            break;
        }
        if (!futex_wait(st.all_done, epoch, deadline)) {
            done = st.unfinished.load() == 0;
            break;
        }
        if (st.all_done.load(std::memory_order_acquire) != epoch) {
            done = true;  // every task was done at some point since we looked, as Python's join means
            break;
        }
    }
    st.joiners.fetch_sub(1, std::memory_order_relaxed);
    return done;
}

}  // namespace ipc::detail
