// shm/segment.cpp — creating, opening and checking named shared-memory segments, and removing
// anonymous ones when their creator is done.
#include "ipc/detail/segment.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "shm/resource_tracker.hpp"
#include "shm/segment_files.hpp"
#include "shm/segment_header.hpp"
#include "ipc/detail/deadline.hpp"
#include "ipc/error.hpp"
#include "sys/fd.hpp"

namespace ipc::detail {

namespace {

// A creator that has not finished its header by then died while creating the segment.
constexpr auto ready_timeout = std::chrono::seconds(5);
// A request beyond this is a mistake (or an overflow), not a segment.
constexpr std::size_t max_payload_size = std::size_t{1} << 40;
/// How many fresh names a segment without a requested name tries when the one generated is taken.
constexpr int max_name_retries = 8;
constexpr std::size_t payload_offset = segment_payload_offset;
using Header = SegmentHeader;


std::string quoted_type(std::string_view name, std::uint64_t size) {
    return std::string(name) + " (" + std::to_string(size) + " bytes)";
}

/// The element type's name as a header records it, bounded by its field whatever its bytes.
std::string_view recorded_type_name(const Header& header) noexcept {
    return {header.type_name, ::strnlen(header.type_name, sizeof header.type_name)};
}

std::string octal_mode(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "0%o", static_cast<unsigned>(mode & 07777));
    return text;
}

/// Refuses a segment that another user owns, or that group or others may write: ipc creates every
/// segment 0600, so such a one was made or changed by someone else (a squatter on the name).
void check_owner_and_mode(const struct stat& info, const std::string& name) {
    if (info.st_uid != ::geteuid())
        throw PermissionError("open shared object", segment_file_path(name) + " (owned by uid " +
                                  std::to_string(info.st_uid) + ", not by this user, uid " +
                                  std::to_string(::geteuid()) + ")",
                              EACCES);
    if (info.st_mode & 0077)
        throw PermissionError("open shared object", segment_file_path(name) + " (mode " + octal_mode(info.st_mode) +
                                  ": others than its owner may open it, so ipc did not make it so)",
                              EACCES);
}

}  // namespace

std::string_view kind_name(Kind kind) noexcept {
    switch (kind) {
        case Kind::shared_memory: return "SharedMemory";
        case Kind::value: return "Value";
        case Kind::raw_value: return "RawValue";
        case Kind::array: return "Array";
        case Kind::raw_array: return "RawArray";
        case Kind::lock: return "Lock";
        case Kind::rlock: return "RLock";
        case Kind::semaphore: return "Semaphore";
        case Kind::bounded_semaphore: return "BoundedSemaphore";
        case Kind::event: return "Event";
        case Kind::condition: return "Condition";
        case Kind::barrier: return "Barrier";
        case Kind::pipe: return "Pipe";
        case Kind::queue: return "Queue";
        case Kind::shareable_list: return "ShareableList";
        case Kind::manager: return "Manager";
    }
    return "unknown kind";
}

void validate_name(std::string_view name) {
    if (name.empty()) throw ValueError("shared object name must not be empty");
    if (name.size() > 200) throw ValueError("shared object name '" + std::string(name.substr(0, 40)) + "…' is longer than 200 characters");
    if (name.find('/') != std::string_view::npos)
        throw ValueError("shared object name '" + std::string(name) + "' must not contain '/'");
    if (const auto nul = name.find('\0'); nul != std::string_view::npos)  // the system would cut the name there
        throw ValueError("shared object name '" + std::string(name.substr(0, nul)) + "\\0" +
                         std::string(name.substr(nul + 1)) + "' must not contain a NUL byte");
}

Segment::Segment(Key, std::string name, void* base, std::size_t size, bool anonymous, bool created)
    : name_(std::move(name)),
      base_(base),
      size_(size),
      payload_(static_cast<std::byte*>(base) + payload_offset, size - payload_offset),
      anonymous_(anonymous),
      owner_(created),
      creator_pid_(::getpid()) {}

Segment::~Segment() {
    // Only the creating process removes an anonymous name: forked children hold copies of this
    // object too, and spawned ones open the name themselves.
    if (anonymous_ && owner_ && !unlinked_ && creator_pid_ == ::getpid()) {
        unlink_segment_file(name_);
        untrack_segment(name_);
    }
    if (base_) ::munmap(base_, size_);
}

Kind Segment::kind() const noexcept { return static_cast<Kind>(static_cast<const Header*>(base_)->kind); }

ElementType Segment::element_type() const noexcept {
    const auto& header = *static_cast<const Header*>(base_);
    const std::string_view name(header.type_name, ::strnlen(header.type_name, sizeof header.type_name));
    return {header.type_tag, header.type_size, name};
}

std::shared_ptr<Segment> Segment::create(const std::string& requested_name, Kind kind, ElementType type,
                                         std::size_t payload_size,
                                         const std::function<void(std::span<std::byte>)>& initialize) {
    const bool anonymous = requested_name.empty();
    if (!anonymous) validate_name(requested_name);
    std::string name = anonymous ? anonymous_segment_name() : requested_name;
    if (payload_size > max_payload_size)
        throw ValueError("create " + std::string(kind_name(kind)) + " '" + name + "': " + std::to_string(payload_size) +
                         " bytes is more than a segment may hold");
    // A generated name that is taken (by a squatter, or a name generated twice) is replaced by another.
    int descriptor = open_segment_file(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    for (int retries = 0; descriptor < 0 && errno == EEXIST && anonymous && retries < max_name_retries; ++retries) {
        name = anonymous_segment_name();
        descriptor = open_segment_file(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    }
    const std::string what = std::string(kind_name(kind)) + " '" + name + "'";
    if (descriptor < 0) throw_os_error("create", what);
    Fd fd(descriptor);
    // From here on a failure must not leave the half-made name behind.
    struct RemoveOnFailure {
        const std::string& name;
        bool armed = true;
        ~RemoveOnFailure() {
            if (armed) unlink_segment_file(name);
        }
    } remove_on_failure{name};
    // 0600 whatever the umask: only this user's processes may open what we create (a umask of
    // 0277 would leave 0400, which this user's other processes could not open for writing).
    if (::fchmod(fd.get(), 0600) < 0) throw_os_error("set the mode of", what);

    const std::size_t total = payload_offset + ((payload_size + payload_alignment - 1) / payload_alignment) * payload_alignment;
    if (::ftruncate(fd.get(), static_cast<off_t>(total)) < 0) throw_os_error("size", what);
    // Reserve the memory now: a full /dev/shm is an error here, not a SIGBUS at the first touch.
    if (const int error = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(total)); error != 0)
        throw_os_error("reserve " + std::to_string(total) + " bytes for", what, error);
    void* base = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (base == MAP_FAILED) throw_os_error("map", what);
    auto segment = std::make_shared<Segment>(Key{}, name, base, total, anonymous, true);
    segment->payload_ = segment->payload_.first(payload_size);  // the rest is alignment padding

    auto* header = new (base) Header{};
    header->magic = segment_magic;
    header->version = segment_version;
    header->kind = static_cast<std::uint32_t>(kind);
    header->type_tag = type.tag;
    header->type_size = type.size;
    header->payload_size = payload_size;
    std::strncpy(header->type_name, std::string(type.name).c_str(), sizeof header->type_name - 1);
    if (initialize) initialize(segment->payload());
    header->state.store(segment_ready, std::memory_order_release);

    if (anonymous) track_segment(name);
    remove_on_failure.armed = false;
    return segment;
}

std::shared_ptr<Segment> Segment::map_existing(const std::string& name) {
    validate_name(name);
    Fd fd(open_segment_file(name, O_RDWR | O_CLOEXEC, 0));
    if (!fd) throw_os_error("open shared object", name);
    const auto what = "open shared object '" + name + "'";
    // A creator sizes and initialises the segment right after creating it; wait for that, bounded.
    const auto deadline = Deadline::after(ready_timeout);
    struct stat info{};
    for (;;) {
        if (::fstat(fd.get(), &info) < 0) throw_os_error("stat shared object", name);
        check_owner_and_mode(info, name);
        if (static_cast<std::size_t>(info.st_size) >= payload_offset) break;
        if (deadline.expired())
            throw Error(what + ": it is too small to be one of ipc's (" + std::to_string(info.st_size) +
                        " bytes); its creator died while creating it, or another program made it");
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const auto total = static_cast<std::size_t>(info.st_size);
    void* base = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (base == MAP_FAILED) throw_os_error("map shared object", name);
    auto segment = std::make_shared<Segment>(Key{}, name, base, total, false, false);
    auto* header = static_cast<Header*>(base);
    if (header->magic != segment_magic) throw Error(what + ": it was not made by ipc (no ipc header)");
    if (header->version != segment_version)
        throw Error(what + ": made by another ipc version (segment format " + std::to_string(header->version) +
                    ", this library reads " + std::to_string(segment_version) + ")");
    while (header->state.load(std::memory_order_acquire) != segment_ready) {
        if (deadline.expired()) throw Error(what + ": its creator never finished initialising it (did it die?)");
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    // Compared without adding to the claim, which another process may have set to wrap around.
    const std::uint64_t claimed = header->payload_size;
    if (claimed > total - payload_offset)
        throw CorruptSegmentError(what + ": its header claims " + std::to_string(claimed) + " payload bytes but the segment holds " +
                    std::to_string(total - payload_offset) + " (corrupt, or not made by ipc)");
    segment->payload_ = segment->payload_.first(static_cast<std::size_t>(claimed));
    return segment;
}

std::shared_ptr<Segment> Segment::open(const std::string& name, Kind kind, ElementType type) {
    auto segment = map_existing(name);
    const auto* header = static_cast<const Header*>(segment->base_);
    const auto actual = static_cast<Kind>(header->kind);
    if (actual != kind)
        throw ValueError("open " + std::string(kind_name(kind)) + " '" + name + "': it is a " +
                         std::string(kind_name(actual)) + ", not a " + std::string(kind_name(kind)));
    if (header->type_tag != type.tag || header->type_size != type.size)
        throw ValueError("open " + std::string(kind_name(kind)) + " '" + name + "': it holds " +
                         quoted_type(recorded_type_name(*header), header->type_size) + ", not " +
                         quoted_type(type.name, type.size));
    return segment;
}

std::span<std::byte> Segment::payload_after(std::size_t offset, std::string_view what) const {
    if (payload_.size() < offset)
        throw CorruptSegmentError(std::string(what) + " '" + name_ + "': its payload has " +
                                  std::to_string(payload_.size()) + " bytes, fewer than its state's " +
                                  std::to_string(offset) + " (corrupt, or not made by ipc)");
    return payload_.subspan(offset);
}

std::shared_ptr<Segment> Segment::open_any(const std::string& name) { return map_existing(name); }

void Segment::unlink() {
    if (unlinked_) throw FileNotFoundError("unlink", name_, ENOENT);
    unlink(name_);
    unlinked_ = true;
    if (anonymous_ && owner_) untrack_segment(name_);
}

void Segment::unlink(const std::string& name) {
    validate_name(name);
    if (unlink_segment_file(name) < 0) throw_os_error("unlink shared object", name);
}

}  // namespace ipc::detail
