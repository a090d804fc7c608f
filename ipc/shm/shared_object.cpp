// shm/shared_object.cpp — a shared object's handle across a spawn: (segment name, kind, offset),
// reopened and checked on the other side.
#include "ipc/detail/shared_object.hpp"

#include <algorithm>

#include "ipc/error.hpp"

namespace ipc::detail {

SharedObject SharedObject::open(const std::string& name, Kind kind) { return {Segment::open(name, kind, {}), 0}; }

void SharedObject::save(codec::Writer& writer) const {
    writer.write_string(segment_->name());
    const auto kind = static_cast<std::uint32_t>(segment_->kind());
    const auto offset = static_cast<std::uint64_t>(offset_);
    writer.write(&kind, sizeof kind);
    writer.write(&offset, sizeof offset);
}

SharedObject SharedObject::load(codec::Reader& reader, std::initializer_list<Kind> kinds, std::size_t size) {
    const auto name = reader.read_string();
    std::uint32_t kind = 0;
    std::uint64_t offset = 0;
    reader.read(&kind, sizeof kind);
    reader.read(&offset, sizeof offset);
    const auto saved_kind = static_cast<Kind>(kind);
    auto segment = Segment::open_any(name);
    // The name may have been removed and made again as something else between save and load.
    if (segment->kind() != saved_kind || std::find(kinds.begin(), kinds.end(), saved_kind) == kinds.end())
        throw ValueError("reopen '" + name + "': it is a " + std::string(kind_name(segment->kind())) + ", expected a " +
                         std::string(kind_name(saved_kind)));
    if (offset + size > segment->payload().size())
        throw ValueError("reopen '" + name + "': the object lies outside the segment");
    return {std::move(segment), static_cast<std::size_t>(offset)};
}

}  // namespace ipc::detail
