// ipc/shared_memory.hpp — Python's shared_memory.SharedMemory: a block of bytes shared by name
// between processes, related or not, as a std::span<std::byte>.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "ipc/detail/codec_stream.hpp"
#include "ipc/detail/segment.hpp"

namespace ipc {

/// A shared block of bytes. Copies share one mapping; passing it to a Process shares the block.
///
/// A block created without a name gets a generated one and is removed when the creating process
/// drops its last handle (or by the resource tracker if that process is killed). A block created
/// with a name persists until unlink(), as POSIX shared memory does.
class SharedMemory {
public:
    /// Creates a block of `size` bytes with a generated name.
    explicit SharedMemory(std::size_t size);
    /// As Python's SharedMemory(name, create, size): with `create`, makes a new block called `name`
    /// (FileExistsError if taken); without, attaches to it (FileNotFoundError if missing).
    explicit SharedMemory(const std::string& name, bool create = false, std::size_t size = 0);

    /// The name other processes attach with (no leading slash).
    [[nodiscard]] const std::string& name() const;
    [[nodiscard]] std::size_t size() const;
    /// The bytes (Python's `buf`); a ValueError after close().
    [[nodiscard]] std::span<std::byte> buf() const;
    /// Unmaps this handle; other handles and processes keep the block.
    void close() noexcept;
    /// Removes the name: nobody can attach any more, and the memory goes when the last mapping does.
    /// Unlinking twice is a FileNotFoundError.
    void unlink();

    void ipc_save(codec::Writer& writer) const;
    static SharedMemory ipc_load(codec::Reader& reader);

private:
    const detail::Segment& segment() const;

    std::shared_ptr<detail::Segment> segment_;
    std::string name_;
};

}  // namespace ipc
