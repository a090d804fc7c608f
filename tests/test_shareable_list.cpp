// ShareableList<T>: items written by fork and spawn children seen by the parent, anonymous and named
// lifetimes, string slot capacities, lengths written over in shared memory (CorruptSegmentError),
// type and kind checks on attach, count/index, iteration, and atomic items of a small struct.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "harness.hpp"
#include "ipc/shared_memory.hpp"
#include "ipc/sharedctypes.hpp"
#include "ipc/synchronize.hpp"

using ipc::ShareableList;
namespace test = ipc::test;

namespace {

bool shm_exists(const std::string& name) { return std::filesystem::exists("/dev/shm/" + name); }

/// Writes `value` over the u64 at `offset` of a list's payload, as another process could.
template <class T>
void write_word(const ShareableList<T>& list, std::size_t offset, std::uint64_t value) {
    auto bytes = list.shm().buf();
    REQUIRE(offset + sizeof value <= bytes.size());
    std::memcpy(bytes.data() + offset, &value, sizeof value);
}

int double_items(ShareableList<long> list) {
    for (std::size_t i = 0; i < list.size(); ++i) list.set(i, list[i] * 2);
    return static_cast<int>(list.size());
}

/// Attaches by name, checks what the parent stored, rewrites item 1 and tries an item too long.
int edit_named_strings(std::string name) {
    ShareableList<std::string> list(name);
    if (list.size() != 3 || list[0] != "" || list[2] != "hello world") return 2;
    list.set(1, "changed");
    try {
        list.set(0, "longer than eight");
        return 3;
    } catch (const ipc::ValueError&) {
    }
    return 0;
}

/// 3 when reading the list (passed as a handle) is refused as corrupt.
int read_expecting_corrupt(ShareableList<std::string> list) {
    try {
        (void)list.to_vector();
        return 1;
    } catch (const ipc::CorruptSegmentError&) {
        return 3;
    } catch (const ipc::Error&) {
        return 2;
    }
}

struct Pair {
    std::int32_t a;
    std::int32_t b;
    bool operator==(const Pair&) const = default;
};
constexpr std::int32_t pair_rounds = 200000;

/// Writes {i, -i} into item 0 many times, then the last pair: a reader must never see a mix.
void write_pairs(ShareableList<Pair> list, ipc::Event started) {
    started.set();
    for (std::int32_t i = 1; i <= pair_rounds; ++i) list.set(0, Pair{i, -i});
}

}  // namespace

TEST_CASE("items a child sets in an anonymous ShareableList are seen by the parent", "[shareable_list]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    std::string name;
    {
        ShareableList<long> list({1, 2, 3, -4});
        name = list.name();
        CHECK(shm_exists(name));
        CHECK(test::run(method, double_items, list) == 4);
        CHECK(list.to_vector() == std::vector<long>{2, 4, 6, -8});
    }
    CHECK_FALSE(shm_exists(name));  // the creator's last handle removed it
}

TEST_CASE("a named ShareableList of strings is attached by name in a child and persists until unlink", "[shareable_list]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    const auto name = test::unique_name("strings");
    {
        ShareableList<std::string> list({"", "abc", "hello world"}, name);
        CHECK(list.name() == name);
        CHECK(list.shm().name() == name);
        CHECK(test::run(method, edit_named_strings, name) == 0);
        CHECK(list[1] == "changed");
        CHECK(list[0].empty());
    }
    CHECK(shm_exists(name));  // user-named: persists without its handles
    ShareableList<std::string> again(name);
    CHECK(again.to_vector() == std::vector<std::string>{"", "changed", "hello world"});
    again.unlink();
    CHECK_FALSE(shm_exists(name));
    CHECK_THROWS_AS(again.unlink(), ipc::FileNotFoundError);
    CHECK(again[2] == "hello world");  // still mapped after unlink, as with POSIX
    CHECK_THROWS_AS(ShareableList<std::string>({"x"}, ""), ipc::ValueError);
    CHECK_THROWS_AS(ShareableList<std::string>({"x"}, "has/slash"), ipc::ValueError);
}

TEST_CASE("a string slot keeps the capacity Python gives it and refuses a longer string", "[shareable_list]") {
    ShareableList<std::string> list(std::vector<std::string_view>{"", "seven77", "eight888", "nine99999"});
    CHECK(list.capacity(0) == 8);
    CHECK(list.capacity(1) == 8);
    CHECK(list.capacity(2) == 16);
    CHECK(list.capacity(3) == 16);
    list.set(0, "8 bytes!");
    CHECK(list[0] == "8 bytes!");
    const auto message = test::error_of<ipc::ValueError>([&] { list.set(1, "nine bytes"); });
    CHECK_THAT(message, Catch::Contains(list.name()) && Catch::Contains("item 1") && Catch::Contains("10 bytes") &&
                            Catch::Contains("capacity of 8"));
    CHECK(list[1] == "seven77");  // the refused write changed nothing
    list.set(3, std::string(16, 'x'));
    CHECK(list[3] == std::string(16, 'x'));
    list.set(3, "");
    CHECK(list[3].empty());
    std::string with_nul("a\0b", 3);  // lengths are stored: no trailing NULs lost, unlike Python
    list.set(2, with_nul);
    CHECK(list[2] == with_nul);
    CHECK_THROWS_AS(list.set(4, "x"), ipc::IndexError);
    CHECK_THROWS_AS(list.capacity(4), ipc::IndexError);
    CHECK_THROWS_WITH(list[4], Catch::Contains("index 4") && Catch::Contains("size 4"));
}

TEST_CASE("a string length written over in shared memory is a CorruptSegmentError for every user", "[shareable_list]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ShareableList<std::string> list({"first", "second", "third"});
    const auto length_of_1 = ipc::detail::StringSlots::length_offset(list.size(), 1);
    REQUIRE(list.capacity(1) == 8);
    write_word(list, length_of_1, 8);  // within the slot: a wrong length, yet no overrun
    CHECK(list[1].size() == 8);
    write_word(list, length_of_1, 9);
    CHECK_THROWS_AS(list[1], ipc::CorruptSegmentError);
    CHECK_THROWS_WITH(list[1], Catch::Contains(list.name()) && Catch::Contains("item 1") &&
                                   Catch::Contains("length of 9") && Catch::Contains("capacity of 8"));
    write_word(list, length_of_1, ~std::uint64_t{0});
    CHECK_THROWS_AS(list[1], ipc::CorruptSegmentError);
    CHECK(list[2] == "third");  // the other items stay readable
    CHECK(test::run(method, read_expecting_corrupt, list) == 3);
}

TEST_CASE("a string list whose count or capacities were written over is refused on attach", "[shareable_list]") {
    const auto name = test::unique_name("layout");
    ShareableList<std::string> list({"a", "b"}, name);
    SECTION("a count beyond the payload") {
        write_word(list, 0, std::uint64_t{1} << 61);
    }
    SECTION("a capacity beyond the payload") {
        write_word(list, 8, 4096);
    }
    SECTION("a capacity that would wrap the sum round") {
        write_word(list, 16, ~std::uint64_t{0} - 7);
    }
    CHECK_THROWS_AS(ShareableList<std::string>(name), ipc::CorruptSegmentError);
    CHECK(list[0] == "a");  // the layout this handle checked when it was made still holds for it
    CHECK(list[1] == "b");
    list.unlink();
}

TEST_CASE("attaching a ShareableList as another type or kind is a ValueError naming both", "[shareable_list]") {
    const auto name = test::unique_name("types");
    ShareableList<int> list({1, 2}, name);
    CHECK_THROWS_WITH(ShareableList<double>(name), Catch::Contains("int") && Catch::Contains("double"));
    CHECK_THROWS_AS(ShareableList<double>(name), ipc::ValueError);
    CHECK_THROWS_WITH(ShareableList<std::string>(name), Catch::Contains("int") && Catch::Contains("std::string"));
    CHECK_THROWS_WITH(ipc::Array<int>::open(name), Catch::Contains("ShareableList") && Catch::Contains("Array"));
    CHECK_THROWS_WITH(ipc::SharedMemory(name), Catch::Contains("ShareableList") && Catch::Contains("SharedMemory"));
    CHECK_THROWS_AS(ShareableList<int>({3}, name), ipc::FileExistsError);
    CHECK(ShareableList<int>(name)[1] == 2);
    list.unlink();
    CHECK_THROWS_AS(ShareableList<int>(name), ipc::FileNotFoundError);
    CHECK_THROWS_AS(ShareableList<char>("ipc-test-no-such-list"), ipc::FileNotFoundError);  // a name, not a sequence
}

TEST_CASE("count and index behave as Python's", "[shareable_list]") {
    ShareableList<int> numbers({1, 2, 1, 3});
    CHECK(numbers.count(1) == 2);
    CHECK(numbers.count(7) == 0);
    CHECK(numbers.index(1) == 0);
    CHECK(numbers.index(3) == 3);
    CHECK_THROWS_AS(numbers.index(7), ipc::ValueError);
    CHECK_THROWS_WITH(numbers.index(7), Catch::Contains("7 is not in the list"));
    ShareableList<std::string> words({"x", "y", "x"});
    CHECK(words.count("x") == 2);
    CHECK(words.index("y") == 1);
    CHECK_THROWS_WITH(words.index("z"), Catch::Contains("'z' is not in the list"));
}

TEST_CASE("iteration yields values and empty lists work", "[shareable_list]") {
    const std::vector<Pair> pairs{{1, 2}, {3, 4}};
    ShareableList<Pair> list(pairs);
    std::vector<Pair> seen;
    for (const Pair pair : list) seen.push_back(pair);
    CHECK(seen == pairs);
    CHECK(std::vector<Pair>(list.begin(), list.end()) == pairs);
    static_assert(std::forward_iterator<ShareableList<Pair>::const_iterator>);
    CHECK(list.index(Pair{3, 4}) == 1);
    ShareableList<int> none(std::vector<int>{});
    CHECK(none.size() == 0);
    CHECK(none.begin() == none.end());
    CHECK_THROWS_AS(none[0], ipc::IndexError);
    ShareableList<std::string> no_words(std::vector<std::string>{});
    CHECK(ShareableList<std::string>(no_words.name()).size() == 0);
}

TEST_CASE("a small struct item is read and written atomically while a child writes it", "[shareable_list]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    static_assert(ipc::detail::lock_free_atomic_v<Pair>);
    ShareableList<Pair> list({Pair{0, 0}});
    ipc::Event started;
    ipc::Process writer({.start_method = method}, write_pairs, list, started);
    test::Reaper reaper(writer);
    writer.start();
    REQUIRE(started.wait(test::bound));
    std::size_t torn = 0;
    std::int32_t last = 0;
    bool backwards = false;
    const auto deadline = std::chrono::steady_clock::now() + test::bound;
    while (last != pair_rounds && std::chrono::steady_clock::now() < deadline) {
        const Pair pair = list[0];
        torn += pair.a != -pair.b ? 1 : 0;
        backwards = backwards || pair.a < last;
        last = pair.a;
    }
    CHECK(test::join_bounded(writer) == 0);
    CHECK(last == pair_rounds);
    CHECK(torn == 0);
    CHECK_FALSE(backwards);
}
