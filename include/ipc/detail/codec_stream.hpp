// ipc/detail/codec_stream.hpp — the byte streams a value is encoded into and decoded from: all that
// a handle's ipc_save/ipc_load needs, without the codec's cereal machinery (ipc/codec.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/error.hpp"

namespace ipc::codec {

/// Appends encoded bytes to a caller-owned buffer, so one buffer can be reused message after message.
class Writer {
public:
    /// `descriptors`, when given, collects the file descriptors that handles hand over (a spawn
    /// sends them along with the bytes); without it a handle that needs one cannot be encoded.
    explicit Writer(std::vector<std::byte>& out, std::vector<int>* descriptors = nullptr) noexcept
        : out_(&out), descriptors_(descriptors) {}
    void write(const void* data, std::size_t size) {
        // resize and memcpy: vector::insert of a byte range is several times slower for the small
        // pieces a message is made of (a tag, a length, a field).
        const auto at = out_->size();
        out_->resize(at + size);
        if (size != 0) std::memcpy(out_->data() + at, data, size);
    }
    /// A string as its length (64 bits) and its characters: the form the codec gives a std::string,
    /// for handles that save a name without the codec's machinery.
    void write_string(std::string_view text) {
        const std::uint64_t size = text.size();
        write(&size, sizeof size);
        write(text.data(), text.size());
    }
    /// True when descriptors can go along (a Process's arguments), false inside a message.
    [[nodiscard]] bool carries_descriptors() const noexcept { return descriptors_ != nullptr; }
    /// Hands `fd` over with the message; the receiver gets its own copy.
    void write_descriptor(int fd, std::string_view what) {
        if (!descriptors_)
            throw CodecError("encode " + std::string(what) +
                             ": it holds a file descriptor, so it can cross only as a Process argument");
        const auto index = static_cast<std::uint32_t>(descriptors_->size());
        descriptors_->push_back(fd);
        write(&index, sizeof index);
    }
    [[nodiscard]] std::vector<std::byte>& buffer() noexcept { return *out_; }

private:
    std::vector<std::byte>* out_;
    std::vector<int>* descriptors_;
};

/// Reads encoded bytes in order; reading past the end is a CodecError, never an overrun.
class Reader {
public:
    explicit Reader(std::span<const std::byte> in, std::span<const int> descriptors = {}) noexcept
        : in_(in), descriptors_(descriptors) {}
    void read(void* data, std::size_t size) {
        if (size == 0) return;  // an empty string's data() may be null, which memcpy must not see
        std::memcpy(data, take(size).data(), size);
    }
    [[nodiscard]] std::span<const std::byte> remaining() const noexcept { return in_; }
    /// What Writer::write_string wrote.
    std::string read_string() {
        std::uint64_t size = 0;
        read(&size, sizeof size);
        if (size > in_.size())
            throw CodecError("decode: a string of " + std::to_string(size) + " bytes claimed but only " +
                             std::to_string(in_.size()) + " left");
        const auto text = take(static_cast<std::size_t>(size));
        return {reinterpret_cast<const char*>(text.data()), text.size()};
    }
    /// The next `size` bytes in place (then skipped), for a caller that copies them itself.
    std::span<const std::byte> take(std::size_t size) {
        if (size > in_.size()) {
            throw CodecError("decode: message truncated (needed " + std::to_string(size) + " more bytes, " +
                             std::to_string(in_.size()) + " left)");
        }
        const auto taken = in_.first(size);
        in_ = in_.subspan(size);
        return taken;
    }
    /// A descriptor handed over by Writer::write_descriptor, still owned by the reader's caller:
    /// a handle that keeps it must duplicate it.
    int read_descriptor() {
        std::uint32_t index = 0;
        read(&index, sizeof index);
        if (index >= descriptors_.size())
            throw CodecError("decode: descriptor " + std::to_string(index) + " was not handed over with the message");
        return descriptors_[index];
    }

private:
    std::span<const std::byte> in_;
    std::span<const int> descriptors_;
};

}  // namespace ipc::codec
