// managers/heap.hpp — a manager's heap as mapped in one process: its checked geometry, the robust
// lock with roll-back of a dead holder's half-made change, the allocator, and bounds-checked access
// to every block and container slot (the bytes are shared, so none is trusted).
#pragma once

#include <cstddef>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ipc/detail/manager_heap.hpp"
#include "ipc/detail/segment.hpp"
#include "managers/heap_layout.hpp"
#include "shm/liveness.hpp"

namespace ipc::detail {

class ManagerHeap {
public:
    /// A new anonymous heap segment with `heap_size` bytes for blocks and room for `max_containers`.
    static std::shared_ptr<ManagerHeap> create(std::size_t heap_size, std::size_t max_containers);
    /// The heap named `name`, mapped once per process.
    static std::shared_ptr<ManagerHeap> open(const std::string& name);

    explicit ManagerHeap(std::shared_ptr<Segment> segment);

    [[nodiscard]] const std::string& name() const noexcept { return segment_->name(); }
    [[nodiscard]] const std::shared_ptr<Segment>& segment() const noexcept { return segment_; }
    [[nodiscard]] std::uint64_t heap_size() const noexcept { return arena_end_ - arena_offset_; }

    // The manager process's side.
    void set_running(std::uint32_t pid, Birth birth) noexcept;
    void set_shut_down() noexcept;

    /// Takes the lock for one call: fails when the manager is gone or the heap corrupt; after a
    /// holder that died, rolls its change back first. A call of `several_changes` journals every
    /// store, commit_store's too, so that its changes land together or not at all.
    void lock(bool several_changes = false);
    /// Commits (clears the journal), frees what the call let go of, and unlocks.
    void commit_and_unlock() noexcept;
    /// Undoes the call's journaled stores, then unlocks.
    void roll_back_and_unlock() noexcept;
    [[nodiscard]] bool held_by_this_thread() const noexcept;

    // Under the lock.
    /// A new block of at least `length` payload bytes; MemoryError when the heap is full.
    std::uint64_t allocate(std::size_t length);
    /// A new block holding `bytes`.
    std::uint64_t allocate_copy(std::span<const std::byte> bytes);
    /// Frees `block` once the call commits (a rolled-back call may still need it).
    void release_later(std::uint64_t block);
    /// The payload of `block`, `length` bytes as recorded; CorruptSegmentError when it is no block.
    [[nodiscard]] std::span<std::byte> payload(std::uint64_t block) const;
    /// The whole payload room of `block`, for its owner to fill.
    [[nodiscard]] std::span<std::byte> room(std::uint64_t block) const;
    /// Stores `value` at `word` (inside the shared payload), journaled.
    void store(std::uint64_t& word, std::uint64_t value);
    /// A store that leaves the container whole by itself (a new root, a grown size, a replaced
    /// value): when no journaled store came before it in the call it needs no journal, and what
    /// the call allocated and released so far is settled by it.
    void commit_store(std::uint64_t& word, std::uint64_t value);
    /// The same for a 32-bit word: the 8-byte word around it is journaled.
    void store32(std::uint32_t& word, std::uint32_t value);

    [[nodiscard]] std::uint64_t container_count() const;
    [[nodiscard]] heap::ContainerSlot& container(std::uint32_t index) const;
    /// Makes a container whose table is `root`; MemoryError when the table of containers is full.
    std::uint32_t add_container(ContainerKind kind, std::uint64_t key_tag, std::uint64_t value_tag, std::uint64_t root);

    /// Marks the heap corrupt for every process and throws CorruptSegmentError naming `problem`.
    [[noreturn]] void corrupt(const std::string& problem) const;
    /// "manager heap 'ipc_…'", for messages.
    [[nodiscard]] std::string describe() const;

private:
    [[nodiscard]] heap::HeapHeader& header() const noexcept { return *segment_->at<heap::HeapHeader>(); }
    [[nodiscard]] heap::BlockHeader& block_header(std::uint64_t block) const;
    void check_manager();
    /// Puts `block` (its header checked by the caller) on the free list of its size.
    void push_free(std::uint64_t block) noexcept;
    void free_blocks(const std::vector<std::uint64_t>& blocks) noexcept;
    /// Calls `visit(offset, header)` for every block below `bump`, each header checked first.
    template <class Visit>
    void walk_arena(std::uint64_t bump, Visit&& visit);
    void undo_journal() noexcept;
    /// Merges runs of free neighbours into larger blocks; false when there was none to merge.
    bool merge_free_blocks();
    /// After a holder died: every block no container reaches is free again.
    void rebuild_free_lists();
    /// A free block of `size_class` from the free lists or new room (merging free neighbours once
    /// when the heap is full); MemoryError when there is none. Its header is the caller's to write.
    std::uint64_t take_block(std::uint32_t size_class);
    /// A smallest block from this process's reserve (refilled with a run of them when empty);
    /// false when the heap has no room for a run.
    bool take_reserved(std::uint64_t& block);
    /// Whether this process's reserve is still its own: none after the heap's reserve epoch moved
    /// on (a merge or rebuild listed its blocks for everyone) or in a forked child (the parent's).
    bool reserve_valid() noexcept;
    /// Maps this process's pages up to a little past `bump` (the end of the carved arena) ahead of
    /// use, outside the lock: a page fault in a call would stall every other caller too.
    void map_ahead(std::uint64_t bump) noexcept;

    std::shared_ptr<Segment> segment_;
    // The geometry, checked against this process's mapping when opened.
    std::uint64_t payload_size_ = 0;
    std::uint64_t containers_offset_ = 0;
    std::uint64_t container_capacity_ = 0;
    std::uint64_t arena_offset_ = 0;
    std::uint64_t arena_end_ = 0;
    /// When the next look at the manager process is due (CLOCK_MONOTONIC_COARSE, ns): a call
    /// reads only that clock, the precise one costs more than the rest of a small call.
    std::atomic<std::int64_t> next_manager_look_{0};
    /// How far (payload offset) this process's page tables already map the heap.
    std::atomic<std::uint64_t> mapped_to_{0};
    // Per call, under the lock: what it made since its last commit point (freed again if it rolls
    // back), what it let go of since then (freed when it commits), and what it let go of before
    // (freed either way).
    std::vector<std::uint64_t> allocated_;
    std::vector<std::uint64_t> released_;
    std::vector<std::uint64_t> settled_releases_;
    bool journal_every_store_ = false;
    // This process's reserve of smallest free blocks (lowest last), under the lock; see take_reserved.
    std::vector<std::uint64_t> reserve_;
    std::uint64_t reserve_epoch_ = 0;
    std::uint32_t reserve_pid_ = 0;
};

}  // namespace ipc::detail
