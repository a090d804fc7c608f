// SharedMemory: anonymous and named blocks shared with fork and spawn children, Python's errors,
// owner-only permissions, header checks, and cleanup — also after SIGKILL of a child or the creator.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>
#include <vector>

#include "harness.hpp"
#include "ipc/queues.hpp"
#include "ipc/shared_memory.hpp"
#include "ipc/synchronize.hpp"

using namespace std::chrono_literals;
using ipc::Process;
using ipc::SharedMemory;
using ipc::StartMethod;
namespace test = ipc::test;

namespace {

bool shm_exists(const std::string& name) { return std::filesystem::exists("/dev/shm/" + name); }

int fill_block(SharedMemory block, std::uint8_t value) {
    for (auto& byte : block.buf()) byte = std::byte{value};
    return static_cast<int>(block.size() % 256);
}

int attach_and_check(std::string name, std::size_t size) {
    SharedMemory block(name);
    if (block.size() != size) return 2;
    if (block.buf()[0] != std::byte{7}) return 3;
    block.buf()[1] = std::byte{8};
    return 0;
}

void hold_block_forever(SharedMemory block, ipc::Event ready) {
    block.buf()[0] = std::byte{1};
    ready.set();
    ::pause();
}

/// Creates an anonymous block (first leading a process group of its own, when asked), reports its
/// name and waits to be killed.
void create_block_and_die(std::string report, ipc::Event ready, bool own_group) {
    if (own_group) ::setpgid(0, 0);
    SharedMemory block(4096);
    test::write_file(report, block.name());
    ready.set();
    ::pause();
}

}  // namespace

TEST_CASE("an anonymous block written by a child is seen by the parent", "[shared_memory]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    std::string name;
    {
        SharedMemory block(1000);
        name = block.name();
        CHECK(block.size() == 1000);
        CHECK(name.find('/') == std::string::npos);
        CHECK(shm_exists(name));
        CHECK(test::run(method, fill_block, block, std::uint8_t{0xab}) == 1000 % 256);
        for (auto byte : block.buf()) REQUIRE(byte == std::byte{0xab});
    }
    CHECK_FALSE(shm_exists(name));  // the creator's last handle removed it
}

TEST_CASE("a named block is attached by name in a child and persists until unlink", "[shared_memory]") {
    IPC_EACH_START_METHOD(method);
    const auto name = test::unique_name("block");
    {
        SharedMemory block(name, true, 64);
        CHECK(block.name() == name);
        block.buf()[0] = std::byte{7};
        CHECK(test::run(method, attach_and_check, name, std::size_t{64}) == 0);
        CHECK(block.buf()[1] == std::byte{8});
    }
    CHECK(shm_exists(name));  // user-named: persists without its handles
    SharedMemory again(name);
    CHECK(again.buf()[1] == std::byte{8});
    again.unlink();
    CHECK_FALSE(shm_exists(name));
    CHECK_THROWS_AS(again.unlink(), ipc::FileNotFoundError);
    CHECK(again.buf()[1] == std::byte{8});  // still mapped after unlink, as with POSIX
}

TEST_CASE("SharedMemory reports bad input as Python does", "[shared_memory]") {
    const auto name = test::unique_name("errors");
    CHECK_THROWS_AS(SharedMemory(std::size_t{0}), ipc::ValueError);
    CHECK_THROWS_AS(SharedMemory(name, true, 0), ipc::ValueError);
    CHECK_THROWS_AS(SharedMemory(name), ipc::FileNotFoundError);
    CHECK_THROWS_WITH(SharedMemory(name), Catch::Contains(name));
    SharedMemory block(name, true, 16);
    CHECK_THROWS_AS(SharedMemory(name, true, 16), ipc::FileExistsError);
    CHECK_THROWS_AS(SharedMemory("has/slash", true, 16), ipc::ValueError);
    block.close();
    CHECK_THROWS_WITH(block.buf(), Catch::Contains("closed"));
    block.unlink();  // works on a closed handle: it only needs the name
    CHECK_FALSE(shm_exists(name));
}

TEST_CASE("a name with a NUL byte and a size that cannot be mapped are ValueErrors that create nothing", "[shared_memory]") {
    const auto name = test::unique_name("nul");
    const auto with_nul = name + std::string(1, '\0') + "rest";
    SharedMemory other(name, true, 16);  // what the name would be cut to: it must stay untouched
    CHECK_THROWS_AS(SharedMemory(with_nul, true, 16), ipc::ValueError);
    CHECK_THROWS_WITH(SharedMemory(with_nul, true, 16), Catch::Contains("NUL") && Catch::Contains(name));
    CHECK_THROWS_AS(SharedMemory(with_nul), ipc::ValueError);
    CHECK_THROWS_AS(SharedMemory(with_nul, false).unlink(), ipc::ValueError);
    CHECK(shm_exists(name));
    other.unlink();

    const auto before = test::directory_entries("/dev/shm");
    for (const auto size : {std::numeric_limits<std::size_t>::max(), std::numeric_limits<std::size_t>::max() - 100,
                            std::size_t{1} << 62}) {
        CHECK_THROWS_AS(SharedMemory(size), ipc::ValueError);
        CHECK_THROWS_AS(SharedMemory(name, true, size), ipc::ValueError);
    }
    CHECK_FALSE(shm_exists(name));
    CHECK(test::directory_entries("/dev/shm") == before);
}

int create_anonymous_block(ipc::Queue<std::string> names) {
    SharedMemory block(64);
    names.put(block.name());
    return 0;
}

TEST_CASE("children of one process each create a block without a name and get different names", "[shared_memory]") {
    IPC_EACH_START_METHOD(method);
    SharedMemory warm(16);  // the generator has run once before the forks copy it
    ipc::Queue<std::string> names;
    std::vector<Process> children;
    for (int i = 0; i < 3; ++i) children.emplace_back(ipc::ProcessOptions{.start_method = method}, create_anonymous_block, names);
    for (auto& child : children) child.start();
    std::set<std::string> seen{warm.name()};
    for (int i = 0; i < 3; ++i) seen.insert(names.get(true, 10s));
    for (auto& child : children) {
        CHECK(test::join_bounded(child) == 0);
    }
    CHECK(seen.size() == 4);
}

TEST_CASE("blocks are created with owner-only permissions", "[shared_memory]") {
    const auto old_umask = ::umask(0);  // even a permissive umask must not widen them
    SharedMemory block(32);
    ::umask(old_umask);
    struct stat info {};
    REQUIRE(::stat(("/dev/shm/" + block.name()).c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0600);
}

TEST_CASE("opening an object as another kind is an error naming both", "[shared_memory]") {
    const auto name = test::unique_name("kind");
    auto lock = ipc::Lock::create(name);
    CHECK_THROWS_AS(SharedMemory(name), ipc::ValueError);
    CHECK_THROWS_WITH(SharedMemory(name), Catch::Contains("Lock") && Catch::Contains("SharedMemory"));
    lock.unlink();
}

TEST_CASE("a foreign shared memory object is refused, not reinterpreted", "[shared_memory]") {
    const auto name = test::unique_name("foreign");
    {
        int fd = ::shm_open(("/" + name).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
        REQUIRE(fd >= 0);
        REQUIRE(::ftruncate(fd, 4096) == 0);
        ::close(fd);
    }
    CHECK_THROWS_WITH(SharedMemory(name), Catch::Contains("not made by ipc"));
    ::shm_unlink(("/" + name).c_str());
}

TEST_CASE("the creator removes an anonymous block even when children holding it were killed", "[shared_memory]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    std::string name;
    {
        SharedMemory block(128);
        name = block.name();
        ipc::Event ready;
        Process child({.start_method = method}, hold_block_forever, block, ready);
        test::Reaper reaper(child);
        child.start();
        REQUIRE(ready.wait(test::bound));
        child.kill();
        CHECK(test::join_bounded(child) == -SIGKILL);
        CHECK(block.buf()[0] == std::byte{1});
    }
    CHECK_FALSE(shm_exists(name));
}

TEST_CASE("the resource tracker removes what a SIGKILLed creator left, also when its whole group is killed", "[shared_memory]") {
    // Under fork the child shares this process's tracker, under spawn it starts its own; either way
    // the tracker finds the creator gone. With `whole_group`, the child leads a process group of
    // its own and the whole group is killed: a tracker started from it lives in a session of its
    // own, so the kill spares it and it cleans up.
    IPC_EACH_START_METHOD(method);
    const bool whole_group = GENERATE(false, true);
    INFO("killed: " << (whole_group ? "the creator's process group" : "the creator"));
    test::LeakCheck leaks;
    test::TempDir dir;
    const auto report = dir.file("name");
    ipc::Event ready;
    Process creator({.start_method = method}, create_block_and_die, report, ready, whole_group);
    test::Reaper reaper(creator);
    creator.start();
    REQUIRE(ready.wait(test::bound));
    const auto name = test::read_file(report);
    REQUIRE(shm_exists(name));
    REQUIRE(::kill(whole_group ? -*creator.pid() : *creator.pid(), SIGKILL) == 0);
    CHECK(test::join_bounded(creator) == -SIGKILL);
    CHECK(test::eventually([&] { return !shm_exists(name); }));
}

TEST_CASE("a new tracker removes what creators left whose tracker died too", "[shared_memory]") {
    test::LeakCheck leaks;
    // An anonymous name whose creator and tracker are both gone (two reaped children): as a killed
    // program and its tracker would leave it.
    auto reaped = [] {
        const pid_t child = ::fork();
        if (child == 0) ::_exit(0);
        REQUIRE(::waitpid(child, nullptr, 0) == child);
        return static_cast<unsigned>(child);
    };
    char orphan[96];
    std::snprintf(orphan, sizeof orphan, "ipc_%u_%08x_%u_%08x_%016x", reaped(), 1u, reaped(), 1u, 0x5eedu);
    // The same with a creator that lives (this process): not an orphan, it stays.
    char kept[96];
    std::snprintf(kept, sizeof kept, "ipc_%u_%08x_%u_%08x_%016x", static_cast<unsigned>(::getpid()), 0u, reaped(), 1u,
                  0x5eedu);
    for (const char* name : {orphan, kept}) {
        const int fd = ::shm_open((std::string("/") + name).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
        REQUIRE(fd >= 0);
        ::close(fd);
    }
    // A spawned child starts a tracker of its own, which sweeps when it starts.
    ipc::Event ready;
    test::TempDir dir;
    Process program({.start_method = StartMethod::spawn}, create_block_and_die, dir.file("name"), ready, false);
    test::Reaper reaper(program);
    program.start();
    REQUIRE(ready.wait(test::bound));
    CHECK(test::eventually([&] { return !shm_exists(orphan); }));
    CHECK(shm_exists(kept));
    ::shm_unlink((std::string("/") + kept).c_str());
    program.kill();
    CHECK(test::join_bounded(program) == -SIGKILL);
}
