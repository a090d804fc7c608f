// shm/segment.cpp — creating, opening and checking named shared-memory segments, and removing
// anonymous ones when their creator is done.
#include "ipc/detail/segment.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>

#include "shm/resource_tracker.hpp"
#include "ipc/detail/deadline.hpp"
#include "ipc/error.hpp"
#include "sys/fd.hpp"

namespace ipc::detail {

namespace {

constexpr std::uint64_t segment_magic = 0x3130474553435049ULL;  // the bytes "IPCSEG01"
constexpr std::uint32_t segment_version = 3;  // 3: holders and lock owners recorded with their birth
constexpr std::uint32_t state_ready = 1;
// A creator that has not finished its header by then died while creating the segment.
constexpr auto ready_timeout = std::chrono::seconds(5);

struct alignas(Segment::payload_alignment) Header {
    std::uint64_t magic;
    std::uint32_t version;
    std::uint32_t kind;
    std::uint64_t type_tag;
    std::uint64_t type_size;
    std::uint64_t payload_size;
    char type_name[128];
    std::atomic<std::uint32_t> state;  // published last, with release ordering
};

constexpr std::size_t payload_offset = sizeof(Header);
static_assert(payload_offset % Segment::payload_alignment == 0);

std::string shm_path(const std::string& name) { return "/" + name; }

std::string generated_name() {
    static std::mutex mutex;
    static std::mt19937_64 random{std::random_device{}()};
    std::lock_guard lock(mutex);
    char text[64];
    std::snprintf(text, sizeof text, "ipc_%d_%016llx", static_cast<int>(::getpid()),
                  static_cast<unsigned long long>(random()));
    return text;
}

std::string quoted_type(std::string_view name, std::uint64_t size) {
    return std::string(name) + " (" + std::to_string(size) + " bytes)";
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
    }
    return "unknown kind";
}

void validate_name(std::string_view name) {
    if (name.empty()) throw ValueError("shared object name must not be empty");
    if (name.size() > 200) throw ValueError("shared object name '" + std::string(name.substr(0, 40)) + "…' is longer than 200 characters");
    if (name.find('/') != std::string_view::npos)
        throw ValueError("shared object name '" + std::string(name) + "' must not contain '/'");
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
        ::shm_unlink(shm_path(name_).c_str());
        untrack_segment(name_);
    }
    if (base_) ::munmap(base_, size_);
}

Kind Segment::kind() const noexcept { return static_cast<Kind>(static_cast<const Header*>(base_)->kind); }

std::shared_ptr<Segment> Segment::create(const std::string& requested_name, Kind kind, ElementType type,
                                         std::size_t payload_size,
                                         const std::function<void(std::span<std::byte>)>& initialize) {
    const bool anonymous = requested_name.empty();
    if (!anonymous) validate_name(requested_name);
    std::string name = anonymous ? generated_name() : requested_name;
    const std::string what = std::string(kind_name(kind)) + " '" + name + "'";

    // 0600: only this user's processes may open what we create, whatever the umask.
    Fd fd(::shm_open(shm_path(name).c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600));
    if (!fd) throw_os_error("create", what);
    // From here on a failure must not leave the half-made name behind.
    struct RemoveOnFailure {
        const std::string& path;
        bool armed = true;
        ~RemoveOnFailure() {
            if (armed) ::shm_unlink(path.c_str());
        }
    } remove_on_failure{shm_path(name)};

    const std::size_t total = payload_offset + ((payload_size + payload_alignment - 1) / payload_alignment) * payload_alignment;
    if (::ftruncate(fd.get(), static_cast<off_t>(total)) < 0) throw_os_error("size", what);
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
    header->state.store(state_ready, std::memory_order_release);

    if (anonymous) track_segment(name);
    remove_on_failure.armed = false;
    return segment;
}

std::shared_ptr<Segment> Segment::map_existing(const std::string& name) {
    validate_name(name);
    Fd fd(::shm_open(shm_path(name).c_str(), O_RDWR | O_CLOEXEC, 0));
    if (!fd) throw_os_error("open shared object", name);
    // A creator sizes and initialises the segment right after creating it; wait for that, bounded.
    const auto deadline = Deadline::after(ready_timeout);
    struct stat info{};
    for (;;) {
        if (::fstat(fd.get(), &info) < 0) throw_os_error("stat shared object", name);
        if (static_cast<std::size_t>(info.st_size) >= payload_offset) break;
        if (deadline.expired())
            throw Error("open shared object '" + name + "': it is too small to be one of ipc's (" +
                        std::to_string(info.st_size) + " bytes); its creator died while creating it, or another program made it");
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const auto total = static_cast<std::size_t>(info.st_size);
    void* base = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (base == MAP_FAILED) throw_os_error("map shared object", name);
    auto segment = std::make_shared<Segment>(Key{}, name, base, total, false, false);
    auto* header = static_cast<Header*>(base);
    if (header->magic != segment_magic)
        throw Error("open shared object '" + name + "': it was not made by ipc (no ipc header)");
    if (header->version != segment_version)
        throw Error("open shared object '" + name + "': made by another ipc version (segment format " +
                    std::to_string(header->version) + ", this library reads " + std::to_string(segment_version) + ")");
    while (header->state.load(std::memory_order_acquire) != state_ready) {
        if (deadline.expired())
            throw Error("open shared object '" + name + "': its creator never finished initialising it (did it die?)");
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    if (payload_offset + header->payload_size > total)
        throw Error("open shared object '" + name + "': its header claims more bytes than it has");
    segment->payload_ = segment->payload_.first(header->payload_size);
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
                         quoted_type(header->type_name, header->type_size) + ", not " + quoted_type(type.name, type.size));
    return segment;
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
    if (::shm_unlink(shm_path(name).c_str()) < 0) throw_os_error("unlink shared object", name);
}

}  // namespace ipc::detail
