// ipc/detail/shared_object.hpp — the handle every shared primitive is made of: a segment and the
// offset of the primitive's state in it, which crosses a spawn as (name, kind, offset).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <utility>

#include "ipc/detail/codec_stream.hpp"
#include "ipc/detail/segment.hpp"

namespace ipc::detail {

class SharedObject {
public:
    SharedObject() = default;
    SharedObject(std::shared_ptr<Segment> segment, std::size_t offset) noexcept
        : segment_(std::move(segment)), offset_(offset) {}

    /// A new segment of `kind`, named `name` (anonymous when empty), holding one State built from
    /// `args` before any other process can open it; FileExistsError when the name is taken.
    template <class State, class... Args>
    static SharedObject create(const std::string& name, Kind kind, Args&&... args) {
        auto segment = Segment::create(name, kind, {}, sizeof(State), [&](std::span<std::byte> payload) {
            new (payload.data()) State{std::forward<Args>(args)...};
        });
        return {std::move(segment), 0};
    }
    /// The object in segment `name`: FileNotFoundError when missing, ValueError when of another kind.
    static SharedObject open(const std::string& name, Kind kind);

    template <class State>
    [[nodiscard]] State& state() const noexcept {
        return *segment_->at<State>(offset_);
    }
    [[nodiscard]] const std::string& name() const noexcept { return segment_->name(); }
    [[nodiscard]] const std::shared_ptr<Segment>& segment() const noexcept { return segment_; }
    [[nodiscard]] std::size_t offset() const noexcept { return offset_; }
    /// The same segment, another object inside it (a Value's lock).
    [[nodiscard]] SharedObject at(std::size_t offset) const noexcept { return {segment_, offset}; }

    void save(codec::Writer& writer) const;
    /// Reopens what save() wrote; the segment must be one of `kinds` and hold `size` bytes at the offset.
    static SharedObject load(codec::Reader& reader, std::initializer_list<Kind> kinds, std::size_t size);

    friend bool operator==(const SharedObject& a, const SharedObject& b) noexcept {
        return a.segment_ == b.segment_ && a.offset_ == b.offset_;
    }

private:
    std::shared_ptr<Segment> segment_;
    std::size_t offset_ = 0;
};

}  // namespace ipc::detail
