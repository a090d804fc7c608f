// managers/heap.cpp — a manager's heap (heap.hpp): geometry checks, the lock and its roll-back,
// the allocator, and the rebuild of the free lists after a holder died.
#include "managers/heap.hpp"

#include <bit>
#include <chrono>
#include <ctime>
#include <cstring>
#include <map>
#include <mutex>
#include <new>

#include <pthread.h>
#include <sys/mman.h>

#include "ipc/detail/deadline.hpp"
#include "ipc/detail/thread_id.hpp"
#include "ipc/error.hpp"
#include "managers/tables.hpp"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14's value, for C libraries that predate it
#endif

namespace ipc::detail {

namespace {

constexpr std::uint64_t round_up(std::uint64_t value, std::uint64_t to) noexcept { return (value + to - 1) / to * to; }

/// Heaps mapped in this process, by name, so that every proxy of one heap shares one mapping.
struct OpenHeaps {
    std::mutex mutex;
    std::map<std::string, std::weak_ptr<ManagerHeap>> by_name;

    OpenHeaps() {
        // A fork while another thread holds the mutex must not leave the child a held one: the
        // forking thread takes it, and frees it on both sides.
        ::pthread_atfork([] { instance().mutex.lock(); }, [] { instance().mutex.unlock(); },
                         [] { instance().mutex.unlock(); });
    }
    static OpenHeaps& instance() {
        static OpenHeaps heaps;
        return heaps;
    }
};

void check_geometry(bool holds, const std::string& what, const char* problem) {
    if (!holds) throw CorruptSegmentError("open manager heap '" + what + "': " + problem);
}

}  // namespace

std::shared_ptr<ManagerHeap> ManagerHeap::create(std::size_t heap_size, std::size_t max_containers) {
    if (heap_size < 4096) throw ValueError("Manager: heap_size " + std::to_string(heap_size) + " is below 4096 bytes");
    if (max_containers == 0 || max_containers > (std::size_t{1} << 24))
        throw ValueError("Manager: max_objects " + std::to_string(max_containers) + " is not in 1 … 16777216");
    const std::uint64_t containers_offset = round_up(sizeof(heap::HeapHeader), 64);
    const std::uint64_t arena_offset = round_up(containers_offset + max_containers * sizeof(heap::ContainerSlot), 64);
    const std::uint64_t arena_end = arena_offset + round_up(heap_size, 64);
    auto segment = Segment::create("", Kind::manager, {}, arena_end, [&](std::span<std::byte> payload) {
        auto* header = new (payload.data()) heap::HeapHeader{};
        header->payload_size = arena_end;
        header->containers_offset = containers_offset;
        header->container_capacity = max_containers;
        header->arena_offset = arena_offset;
        header->arena_end = arena_end;
        header->bump = arena_offset;
    });
    auto heap = std::make_shared<ManagerHeap>(std::move(segment));
    auto& heaps = OpenHeaps::instance();
    std::lock_guard guard(heaps.mutex);
    heaps.by_name[heap->name()] = heap;
    return heap;
}

std::shared_ptr<ManagerHeap> ManagerHeap::open(const std::string& name) {
    auto& heaps = OpenHeaps::instance();
    {
        std::lock_guard guard(heaps.mutex);
        if (auto known = heaps.by_name[name].lock()) return known;
    }
    // Mapped without the mutex: opening takes other locks (the resource tracker's), which a fork
    // takes before this one (pthread_atfork), so holding this one first could deadlock.
    auto heap = std::make_shared<ManagerHeap>(Segment::open(name, Kind::manager, {}));
    std::lock_guard guard(heaps.mutex);
    auto& entry = heaps.by_name[name];
    if (auto raced = entry.lock()) return raced;  // another thread mapped it meanwhile
    entry = heap;
    return heap;
}

ManagerHeap::ManagerHeap(std::shared_ptr<Segment> segment) : segment_(std::move(segment)) {
    const auto size = segment_->payload().size();
    const auto& what = segment_->name();
    check_geometry(size >= sizeof(heap::HeapHeader), what, "smaller than its header");
    const auto& h = header();
    payload_size_ = h.payload_size;
    containers_offset_ = h.containers_offset;
    container_capacity_ = h.container_capacity;
    arena_offset_ = h.arena_offset;
    arena_end_ = h.arena_end;
    check_geometry(payload_size_ == size, what, "its recorded size is not its mapped size");
    check_geometry(containers_offset_ >= sizeof(heap::HeapHeader) && containers_offset_ % 64 == 0, what,
                   "its container table overlaps its header");
    check_geometry(container_capacity_ <= (std::uint64_t{1} << 24) &&
                       containers_offset_ + container_capacity_ * sizeof(heap::ContainerSlot) <= arena_offset_,
                   what, "its container table overlaps its arena");
    check_geometry(arena_offset_ % 16 == 0 && arena_offset_ < arena_end_ && arena_end_ <= payload_size_, what,
                   "its arena lies outside the segment");
}

void ManagerHeap::set_running(std::uint32_t pid, Birth birth) noexcept {
    auto& h = header();
    h.manager_pid = pid;
    h.manager_birth = birth;
    h.state.store(static_cast<std::uint32_t>(heap::ManagerState::running), std::memory_order_release);
}

void ManagerHeap::set_shut_down() noexcept {
    header().state.store(static_cast<std::uint32_t>(heap::ManagerState::shut_down), std::memory_order_release);
}

std::string ManagerHeap::describe() const { return "manager heap '" + name() + "'"; }

void ManagerHeap::corrupt(const std::string& problem) const {
    header().corrupt.store(1, std::memory_order_relaxed);
    throw CorruptSegmentError(describe() + ": " + problem);
}

void ManagerHeap::check_manager() {
    auto& h = header();
    if (h.corrupt.load(std::memory_order_relaxed) != 0)
        throw CorruptSegmentError(describe() + ": found corrupt before; it stays unusable");
    const auto state = static_cast<heap::ManagerState>(h.state.load(std::memory_order_acquire));
    if (state == heap::ManagerState::shut_down) throw ManagerError(describe() + ": the manager has shut down");
    if (state != heap::ManagerState::running) throw ManagerError(describe() + ": the manager has not started");
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    const auto now_ns = std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
    if (now_ns < next_manager_look_.load(std::memory_order_relaxed)) return;
    if (!alive(h.manager_pid, h.manager_birth))
        throw ManagerError(describe() + ": the manager process (pid " + std::to_string(h.manager_pid) + ") is gone");
    next_manager_look_.store(now_ns + std::chrono::nanoseconds(throttle_gap).count(), std::memory_order_relaxed);
}

bool ManagerHeap::held_by_this_thread() const noexcept { return lock_owner(header().lock) == this_thread_id(); }

void ManagerHeap::lock(bool several_changes) {
    check_manager();
    auto& h = header();
    // One try first: reading the word before taking it would fetch its line twice from the other
    // CPU when it is free; only a taken word needs the look at who holds it.
    auto acquired = acquire_lock(h.lock, this_thread_id(), false, Deadline::never());
    if (acquired == Acquired::timed_out) {
        if (held_by_this_thread())
            throw ValueError(describe() + ": a proxy call made inside another call on the same manager (from a "
                                          "sort's comparison, say), which would wait for itself");
        acquired = acquire_lock(h.lock, this_thread_id(), true, Deadline::never());
    }
    if (acquired == Acquired::owner_died) {
        try {
            undo_journal();
            rebuild_free_lists();
        } catch (...) {
            release_lock(h.lock);
            throw;
        }
    }
    released_.clear();
    allocated_.clear();
    settled_releases_.clear();
    journal_every_store_ = several_changes;
}

void ManagerHeap::push_free(std::uint64_t block) noexcept {
    auto& h = header();
    auto& bh = *segment_->at<heap::BlockHeader>(block);
    bh.state = heap::block_free;
    std::memcpy(segment_->at<std::byte>(block + heap::block_header_size), &h.free_heads[bh.size_class],
                sizeof(std::uint64_t));
    h.free_heads[bh.size_class] = block;
}

void ManagerHeap::free_blocks(const std::vector<std::uint64_t>& blocks) noexcept {
    // Each was checked by release_later or allocate. The smallest go back to this process's
    // reserve while it has room, where its next allocations find them.
    if (blocks.empty()) return;  // most calls: no look at the reserve inside the lock
    (void)reserve_valid();
    for (const auto block : blocks) {
        auto& bh = *segment_->at<heap::BlockHeader>(block);
        if (bh.size_class == heap::min_class && reserve_.size() < reserve_.capacity()) {  // never reallocates
            bh = {heap::min_class, heap::block_free, 0};
            reserve_.push_back(block);
        } else {
            push_free(block);
        }
    }
}

template <class Visit>
void ManagerHeap::walk_arena(std::uint64_t bump, Visit&& visit) {
    for (auto block = arena_offset_; block < bump;) {
        auto& bh = *segment_->at<heap::BlockHeader>(block);
        if (bh.size_class < heap::min_class || bh.size_class > heap::max_class ||
            (std::uint64_t{1} << bh.size_class) > bump - block)
            corrupt("its arena holds a bad block header at " + std::to_string(block));
        const auto next = block + (std::uint64_t{1} << bh.size_class);
        visit(block, bh);
        block = next;
    }
}

void ManagerHeap::commit_and_unlock() noexcept {
    auto& h = header();
    // Most calls journal nothing: they leave the journal's line alone, in the other CPU's cache.
    if (h.journal_size.load(std::memory_order_relaxed) != 0) h.journal_size.store(0, std::memory_order_release);
    free_blocks(settled_releases_);
    free_blocks(released_);
    const auto bump = h.bump;
    release_lock(h.lock);
    map_ahead(bump);
}

void ManagerHeap::map_ahead(std::uint64_t bump) noexcept {
    constexpr std::uint64_t ahead = std::uint64_t{1} << 20;
    constexpr std::uint64_t page = 4096;
    const auto want = std::min(arena_end_, bump + ahead);
    auto done = mapped_to_.load(std::memory_order_relaxed);
    if (want <= done + ahead / 2) return;  // the common case: mapped far enough ahead
    if (!mapped_to_.compare_exchange_strong(done, want, std::memory_order_relaxed)) return;  // another thread maps
    const auto first = reinterpret_cast<std::uintptr_t>(segment_->at<std::byte>(done)) / page * page;
    const auto last = reinterpret_cast<std::uintptr_t>(segment_->at<std::byte>(0)) + want;
    // Write-faults every page in without writing a byte (Linux 5.14; older kernels refuse, harmlessly).
    (void)::madvise(reinterpret_cast<void*>(first), last - first, MADV_POPULATE_WRITE);
}

void ManagerHeap::roll_back_and_unlock() noexcept {
    undo_journal();
    // What the call allocated since its last commit point is unreachable again; what it released
    // since then the containers still hold.
    free_blocks(settled_releases_);
    free_blocks(allocated_);
    release_lock(header().lock);
}

void ManagerHeap::undo_journal() noexcept {
    auto& h = header();
    const auto size = std::min<std::uint64_t>(h.journal_size.load(std::memory_order_acquire), heap::journal_capacity);
    const auto count_offset = static_cast<std::uint64_t>(offsetof(heap::HeapHeader, container_count));
    for (auto i = size; i-- > 0;) {
        const auto entry = h.journal[i];
        const bool in_place = entry.offset == count_offset ||
                              (entry.offset >= containers_offset_ && entry.offset % 8 == 0 &&
                               entry.offset <= payload_size_ - sizeof(std::uint64_t));
        if (in_place) std::memcpy(segment_->at<std::byte>(entry.offset), &entry.before, sizeof entry.before);
    }
    h.journal_size.store(0, std::memory_order_release);
}

heap::BlockHeader& ManagerHeap::block_header(std::uint64_t block) const {
    const auto bump = header().bump;
    if (block < arena_offset_ || block % 16 != 0 || bump > arena_end_ || block >= bump ||
        bump - block < heap::block_header_size)
        corrupt("block offset " + std::to_string(block) + " lies outside the used arena");
    auto& bh = *segment_->at<heap::BlockHeader>(block);
    if (bh.size_class < heap::min_class || bh.size_class > heap::max_class ||
        (std::uint64_t{1} << bh.size_class) > bump - block ||
        bh.length > (std::uint64_t{1} << bh.size_class) - heap::block_header_size)
        corrupt("block at " + std::to_string(block) + " has a bad header");
    return bh;
}

std::span<std::byte> ManagerHeap::payload(std::uint64_t block) const {
    const auto& bh = block_header(block);
    return {segment_->at<std::byte>(block + heap::block_header_size), static_cast<std::size_t>(bh.length)};
}

std::span<std::byte> ManagerHeap::room(std::uint64_t block) const {
    const auto& bh = block_header(block);
    return {segment_->at<std::byte>(block + heap::block_header_size),
            static_cast<std::size_t>((std::uint64_t{1} << bh.size_class) - heap::block_header_size)};
}

std::uint64_t ManagerHeap::allocate(std::size_t length) {
    const auto size_class = std::max<std::uint32_t>(heap::min_class, std::bit_width(length + heap::block_header_size - 1));
    if (size_class > heap::max_class || length > heap_size())
        throw MemoryError(describe() + ": a block of " + std::to_string(length) + " bytes is larger than the heap (" +
                          std::to_string(heap_size()) + " bytes; ManagerOptions::heap_size sets it)");
    std::uint64_t block = 0;
    if (size_class != heap::min_class || !take_reserved(block)) block = take_block(size_class);
    *segment_->at<heap::BlockHeader>(block) = {size_class, heap::block_used, length};
    allocated_.push_back(block);
    return block;
}

std::uint64_t ManagerHeap::take_block(std::uint32_t size_class) {
    auto& h = header();
    // A free block of the size; else new room at the end; else a larger free block, split (its
    // unused halves freed).
    const auto size = std::uint64_t{1} << size_class;
    const auto bump = h.bump;
    if (bump < arena_offset_ || bump > arena_end_) corrupt("its allocation mark lies outside the arena");
    std::uint32_t from = size_class;
    if (h.free_heads[from] == 0 && arena_end_ - bump < size)
        while (from <= heap::max_class && h.free_heads[from] == 0) ++from;
    if (from <= heap::max_class && h.free_heads[from] != 0) {
        const auto block = h.free_heads[from];
        const auto& bh = block_header(block);
        if (bh.size_class != from || bh.state != heap::block_free)
            corrupt("free list " + std::to_string(from) + " holds a block that is not free");
        std::uint64_t next = 0;
        std::memcpy(&next, segment_->at<std::byte>(block + heap::block_header_size), sizeof next);
        h.free_heads[from] = next;
        // The halves' headers first, the first piece's last: a walk of the arena at any point
        // finds whole blocks.
        for (auto piece = from; piece-- > size_class;) {
            const auto half = block + (std::uint64_t{1} << piece);
            *segment_->at<heap::BlockHeader>(half) = {piece, heap::block_free, 0};
            push_free(half);
        }
        *segment_->at<heap::BlockHeader>(block) = {size_class, heap::block_free, 0};
        return block;
    }
    if (arena_end_ - bump < size) {
        // Free neighbours, merged, may hold it: once, then it is full indeed.
        if (merge_free_blocks()) return take_block(size_class);
        throw MemoryError(describe() + ": the heap is full (" + std::to_string(heap_size()) +
                          " bytes; ManagerOptions::heap_size sets it)");
    }
    *segment_->at<heap::BlockHeader>(bump) = {size_class, heap::block_free, 0};
    h.bump = bump + size;
    return bump;
}

bool ManagerHeap::reserve_valid() noexcept {
    const auto epoch = header().reserve_epoch;
    const auto pid = this_process_id();
    if (reserve_epoch_ == epoch && reserve_pid_ == pid) return true;
    reserve_.clear();
    reserve_epoch_ = epoch;
    reserve_pid_ = pid;
    return false;
}

bool ManagerHeap::take_reserved(std::uint64_t& block) {
    (void)reserve_valid();
    if (reserve_.empty()) {
        constexpr auto run_class = heap::min_class + heap::reserve_shift;
        std::uint64_t run = 0;
        try {
            run = take_block(run_class);
        } catch (const MemoryError&) {
            return false;  // no room for a run: one block the usual way, or MemoryError there
        }
        (void)reserve_valid();  // a merge on the way starts a new epoch
        reserve_.reserve(std::size_t{1} << heap::reserve_shift);
        // Cut right to left, the run's first piece last, so a walk of the arena finds whole blocks.
        for (std::uint64_t piece = std::uint64_t{1} << heap::reserve_shift; piece-- > 0;) {
            const auto at = run + (piece << heap::min_class);
            *segment_->at<heap::BlockHeader>(at) = {heap::min_class, heap::block_free, 0};
            reserve_.push_back(at);
        }
    }
    block = reserve_.back();  // an offset this process cut inside the arena, so only its header is checked
    const auto& bh = *segment_->at<heap::BlockHeader>(block);
    if (bh.size_class != heap::min_class || bh.state != heap::block_free) corrupt("a reserved block is not free");
    reserve_.pop_back();
    return true;
}

std::uint64_t ManagerHeap::allocate_copy(std::span<const std::byte> bytes) {
    const auto block = allocate(bytes.size());
    if (!bytes.empty()) std::memcpy(segment_->at<std::byte>(block + heap::block_header_size), bytes.data(), bytes.size());
    return block;
}

void ManagerHeap::release_later(std::uint64_t block) {
    (void)block_header(block);
    released_.push_back(block);
}

void ManagerHeap::store(std::uint64_t& word, std::uint64_t value) {
    auto& h = header();
    const auto offset = static_cast<std::uint64_t>(reinterpret_cast<std::byte*>(&word) - segment_->at<std::byte>());
    const auto size = h.journal_size.load(std::memory_order_relaxed);
    if (size >= heap::journal_capacity) throw Error(describe() + ": one call made more journaled stores than the journal holds");
    h.journal[size] = {offset, word};
    h.journal_size.store(size + 1, std::memory_order_release);
    std::atomic_ref<std::uint64_t>(word).store(value, std::memory_order_release);
}

void ManagerHeap::commit_store(std::uint64_t& word, std::uint64_t value) {
    if (journal_every_store_ || header().journal_size.load(std::memory_order_relaxed) != 0) return store(word, value);
    std::atomic_ref<std::uint64_t>(word).store(value, std::memory_order_release);
    settled_releases_.insert(settled_releases_.end(), released_.begin(), released_.end());
    released_.clear();
    allocated_.clear();
}

void ManagerHeap::store32(std::uint32_t& word, std::uint32_t value) {
    auto* base = reinterpret_cast<std::byte*>(&word);
    const auto misalignment = reinterpret_cast<std::uintptr_t>(base) % 8;
    auto& whole = *reinterpret_cast<std::uint64_t*>(base - misalignment);
    std::uint64_t changed = whole;
    std::memcpy(reinterpret_cast<std::byte*>(&changed) + misalignment, &value, sizeof value);
    store(whole, changed);
}

std::uint64_t ManagerHeap::container_count() const {
    const auto count = header().container_count;
    if (count > container_capacity_) corrupt("it claims more containers than its table holds");
    return count;
}

heap::ContainerSlot& ManagerHeap::container(std::uint32_t index) const {
    if (index >= container_count()) corrupt("container " + std::to_string(index) + " was never made");
    return segment_->at<heap::ContainerSlot>(containers_offset_)[index];
}

std::uint32_t ManagerHeap::add_container(ContainerKind kind, std::uint64_t key_tag, std::uint64_t value_tag,
                                         std::uint64_t root) {
    const auto count = container_count();
    if (count >= container_capacity_)
        throw MemoryError(describe() + ": it holds " + std::to_string(count) +
                          " managed objects already (ManagerOptions::max_objects)");
    segment_->at<heap::ContainerSlot>(containers_offset_)[count] = {static_cast<std::uint32_t>(kind), 0, key_tag,
                                                                     value_tag, root};
    store(header().container_count, count + 1);
    return static_cast<std::uint32_t>(count);
}

bool ManagerHeap::merge_free_blocks() {
    auto& h = header();
    const auto bump = h.bump;
    if (bump < arena_offset_ || bump > arena_end_) corrupt("its allocation mark lies outside the arena");
    bool merged = false;
    // Each run of free neighbours is cut again into the largest powers of two that fit. The new
    // headers are written right to left, the run's first last: a walk of the arena at any point
    // finds whole blocks, and a holder that dies halfway leaves the free lists to the rebuild.
    const auto recut = [&](std::uint64_t begin, std::uint64_t end, int blocks) {
        if (blocks < 2) return;
        std::vector<std::pair<std::uint64_t, std::uint32_t>> pieces;
        for (auto at = begin; at < end;) {
            const auto piece = static_cast<std::uint32_t>(std::min<std::uint64_t>(heap::max_class, std::bit_width(end - at) - 1));
            pieces.emplace_back(at, piece);
            at += std::uint64_t{1} << piece;
        }
        // A run cut into as many pieces as it has blocks is left as it is: cut anew, its blocks
        // could change sizes under the free lists, which are rebuilt only after a merge.
        if (pieces.size() >= static_cast<std::size_t>(blocks)) return;
        for (auto piece = pieces.rbegin(); piece != pieces.rend(); ++piece)
            *segment_->at<heap::BlockHeader>(piece->first) = {piece->second, heap::block_free, 0};
        merged = true;
    };
    std::uint64_t run_begin = 0;
    int run_blocks = 0;
    walk_arena(bump, [&](std::uint64_t block, const heap::BlockHeader& bh) {
        if (bh.state == heap::block_free) {
            if (run_blocks++ == 0) run_begin = block;
        } else {
            recut(run_begin, block, run_blocks);
            run_blocks = 0;
        }
    });
    recut(run_begin, bump, run_blocks);
    if (!merged) return false;
    ++h.reserve_epoch;  // every process's reserve is listed below with the rest
    for (auto& head : h.free_heads) head = 0;
    walk_arena(bump, [&](std::uint64_t block, const heap::BlockHeader& bh) {
        if (bh.state == heap::block_free) push_free(block);
    });
    return true;
}

void ManagerHeap::rebuild_free_lists() {
    auto& h = header();
    const auto bump = h.bump;
    if (bump < arena_offset_ || bump > arena_end_ || bump % 16 != 0) corrupt("its allocation mark lies outside the arena");
    // 1: a block begins here; 2: and a container reaches it.
    std::vector<std::uint8_t> marks(static_cast<std::size_t>((bump - arena_offset_) / 16), 0);
    walk_arena(bump, [&](std::uint64_t block, const heap::BlockHeader&) { marks[(block - arena_offset_) / 16] = 1; });
    const auto reach = [&](std::uint64_t block) {
        if (block < arena_offset_ || block >= bump || block % 16 != 0 || marks[(block - arena_offset_) / 16] != 1)
            corrupt("a container refers to " + std::to_string(block) + ", which is no block or is referred to twice");
        marks[(block - arena_offset_) / 16] = 2;
    };
    const auto count = container_count();
    for (std::uint32_t index = 0; index < count; ++index) for_each_block_of(*this, index, reach);
    ++h.reserve_epoch;  // every process's reserve is unreachable, so free for everyone below
    for (auto& head : h.free_heads) head = 0;
    walk_arena(bump, [&](std::uint64_t block, heap::BlockHeader& bh) {
        if (marks[(block - arena_offset_) / 16] == 2) bh.state = heap::block_used;
        else push_free(block);
    });
}

}  // namespace ipc::detail
