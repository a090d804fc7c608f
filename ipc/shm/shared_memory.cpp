// shm/shared_memory.cpp — Python's SharedMemory: a segment of kind shared_memory, bytes only.
#include "ipc/shared_memory.hpp"

#include "ipc/error.hpp"

namespace ipc {

namespace {
std::shared_ptr<detail::Segment> create_block(const std::string& name, std::size_t size) {
    if (size == 0) throw ValueError("SharedMemory '" + name + "': size must be greater than zero");
    return detail::Segment::create(name, detail::Kind::shared_memory, {}, size, {});
}
}  // namespace

SharedMemory::SharedMemory(std::size_t size) : segment_(create_block({}, size)) { name_ = segment_->name(); }

SharedMemory::SharedMemory(const std::string& name, bool create, std::size_t size)
    : segment_(create ? create_block(name, size) : detail::Segment::open(name, detail::Kind::shared_memory, {})),
      name_(name) {}

SharedMemory::SharedMemory(std::shared_ptr<detail::Segment> segment) : segment_(std::move(segment)) {
    name_ = segment_->name();
}

const detail::Segment& SharedMemory::segment() const {
    if (!segment_) throw ValueError("SharedMemory '" + name_ + "' is closed");
    return *segment_;
}

const std::string& SharedMemory::name() const { return name_; }
std::size_t SharedMemory::size() const { return segment().payload().size(); }
std::span<std::byte> SharedMemory::buf() const { return segment().payload(); }
void SharedMemory::close() noexcept { segment_.reset(); }

void SharedMemory::unlink() {
    if (segment_)
        segment_->unlink();
    else
        detail::Segment::unlink(name_);
}

void SharedMemory::ipc_save(codec::Writer& writer) const { writer.write_string(segment().name()); }

SharedMemory SharedMemory::ipc_load(codec::Reader& reader) {
    return SharedMemory(reader.read_string(), false);
}

}  // namespace ipc
