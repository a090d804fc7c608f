#include "ipc/detail/shared_object.hpp"

#include <algorithm>

#include "ipc/error.hpp"

namespace ipc::detail {

void SharedObject::save(codec::Writer& writer) const {
    codec::save(writer, segment_->name());
    codec::save(writer, static_cast<std::uint32_t>(segment_->kind()));
    codec::save(writer, static_cast<std::uint64_t>(offset_));
}

SharedObject SharedObject::load(codec::Reader& reader, std::initializer_list<Kind> kinds, std::size_t size) {
    const auto name = codec::load<std::string>(reader);
    const auto saved_kind = static_cast<Kind>(codec::load<std::uint32_t>(reader));
    const auto offset = codec::load<std::uint64_t>(reader);
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
