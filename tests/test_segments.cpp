// Segments as another process may leave them: a header of another format version, a payload size
// beyond the mapping (one that wraps around when added to), a creator that never finished, an
// unterminated type name; objects squatted by another user or opened up to others; a umask that
// would lock this user's own processes out; and a full shared-memory folder.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "harness.hpp"
#include "ipc/shared_memory.hpp"
#include "ipc/sharedctypes.hpp"
#include "ipc/synchronize.hpp"
#include "shm/segment_header.hpp"

using namespace std::chrono_literals;
using ipc::detail::SegmentHeader;
namespace test = ipc::test;

namespace {

/// Another process's view of segment `name`'s header, to change it behind the library's back.
class RawHeader {
public:
    explicit RawHeader(const std::string& name) {
        const int fd = ::open(("/dev/shm/" + name).c_str(), O_RDWR | O_CLOEXEC);
        REQUIRE(fd >= 0);
        base_ = ::mmap(nullptr, sizeof(SegmentHeader), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ::close(fd);
        REQUIRE(base_ != MAP_FAILED);
    }
    ~RawHeader() { ::munmap(base_, sizeof(SegmentHeader)); }
    RawHeader(const RawHeader&) = delete;
    RawHeader& operator=(const RawHeader&) = delete;
    SegmentHeader* operator->() const { return static_cast<SegmentHeader*>(base_); }

private:
    void* base_ = nullptr;
};

/// Removes a test's named object however the test ends.
struct Unlink {
    std::string name;
    ~Unlink() { ::shm_unlink(("/" + name).c_str()); }
};

int open_lock(std::string name) {
    auto lock = ipc::Lock::open(name);
    return lock.acquire(test::bound) ? 0 : 2;
}

mode_t mode_of(const std::string& name) {
    struct stat info{};
    REQUIRE(::stat(("/dev/shm/" + name).c_str(), &info) == 0);
    return info.st_mode & 07777;
}

}  // namespace

TEST_CASE("a segment of another format version is refused, naming both versions", "[segments]") {
    const auto name = test::unique_name("version");
    Unlink unlink{name};
    auto lock = ipc::Lock::create(name);
    RawHeader(name)->version = 99;
    const auto message = test::error_of<ipc::Error>([&] { (void)ipc::Lock::open(name); });
    CHECK_THAT(message, Catch::Contains("segment format 99") && Catch::Contains(name));
}

TEST_CASE("a header that claims more payload than the segment holds is refused, also when the claim wraps", "[segments]") {
    const auto name = test::unique_name("payload");
    Unlink unlink{name};
    ipc::SharedMemory block(name, true, 100);
    for (const std::uint64_t claim : {std::uint64_t{1} << 20, ~std::uint64_t{0} - 190}) {
        RawHeader(name)->payload_size = claim;
        const auto message = test::error_of<ipc::Error>([&] { (void)ipc::SharedMemory(name); });
        CHECK_THAT(message, Catch::Contains("claims " + std::to_string(claim)));
    }
}

TEST_CASE("a segment its creator never finished is refused after a bounded wait", "[segments]") {
    const auto name = test::unique_name("unready");
    Unlink unlink{name};
    auto event = ipc::Event::create(name);
    RawHeader(name)->state.store(0);
    const auto start = std::chrono::steady_clock::now();
    const auto message = test::error_of<ipc::Error>([&] { (void)ipc::Event::open(name); });
    CHECK_THAT(message, Catch::Contains("never finished"));
    CHECK(std::chrono::steady_clock::now() - start < test::bound);
}

TEST_CASE("a type name without its terminating NUL is read within its field", "[segments]") {
    const auto name = test::unique_name("typename");
    Unlink unlink{name};
    auto value = ipc::Value<int>::create(name, 1);
    {
        RawHeader header(name);
        std::memset(header->type_name, 'A', sizeof header->type_name);
        header->type_tag ^= 1;  // so the open compares names
    }
    const auto message = test::error_of<ipc::ValueError>([&] { (void)ipc::Value<int>::open(name); });
    CHECK_THAT(message, Catch::Contains(std::string(sizeof(SegmentHeader::type_name), 'A') + " ("));
}

TEST_CASE("objects are created 0600 whatever the umask, and children open them", "[segments]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    const auto name = test::unique_name("umask");
    Unlink unlink{name};
    const mode_t previous = ::umask(0277);
    auto lock = ipc::Lock::create(name);
    ::umask(previous);
    CHECK(mode_of(name) == 0600);
    CHECK(test::run(method, open_lock, name) == 0);
}

TEST_CASE("an object that others than its owner may open is refused as a squatter's", "[segments]") {
    const auto name = test::unique_name("squat");
    Unlink unlink{name};
    auto lock = ipc::Lock::create(name);
    REQUIRE(::chmod(("/dev/shm/" + name).c_str(), 0666) == 0);
    const auto message = test::error_of<ipc::PermissionError>([&] { (void)ipc::Lock::open(name); });
    CHECK_THAT(message, Catch::Contains("mode 0666") && Catch::Contains(name));
    CHECK_THROWS_AS(ipc::Lock::open_or_create(name), ipc::PermissionError);
}

TEST_CASE("an object owned by another user is refused, naming the owner", "[segments]") {
    if (::geteuid() != 0) {
        WARN("not root: cannot give an object to another user here");
        return;
    }
    const auto name = test::unique_name("owner");
    Unlink unlink{name};
    auto lock = ipc::Lock::create(name);
    REQUIRE(::chown(("/dev/shm/" + name).c_str(), 65534, 65534) == 0);
    const auto message = test::error_of<ipc::PermissionError>([&] { (void)ipc::Lock::open(name); });
    CHECK_THAT(message, Catch::Contains("owned by uid 65534"));
}

TEST_CASE("creating in a full shared-memory folder is an ENOSPC error, not a SIGBUS later", "[segments]") {
    test::TempDir folder;
    const auto path = folder.file("shm");
    REQUIRE(::mkdir(path.c_str(), 0700) == 0);
    if (::mount("tmpfs", path.c_str(), "tmpfs", 0, "size=256k") != 0) {
        WARN("cannot mount a small tmpfs here (" << std::strerror(errno) << "): not tested");
        return;
    }
    struct Unmount {
        std::string path;
        ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
    } unmount{path};
    REQUIRE(::setenv("IPC_SHM_DIR", path.c_str(), 1) == 0);
    struct Unset {
        ~Unset() { ::unsetenv("IPC_SHM_DIR"); }
    } unset;
    ipc::SharedMemory fits(64 << 10);
    std::memset(fits.buf().data(), 1, fits.size());
    try {
        ipc::SharedMemory too_large(1 << 20);
        FAIL("a 1 MiB segment was created in a 256 KiB folder");
    } catch (const ipc::OSError& error) {
        CHECK(error.code() == std::errc::no_space_on_device);
        CHECK_THAT(error.what(), Catch::Contains("reserve"));
    }
    CHECK(test::directory_entries(path).size() == 1);  // the failed one left nothing behind
}
