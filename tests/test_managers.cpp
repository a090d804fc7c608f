// Manager, and its dict, list and Namespace proxies: every method as Python's, proxies passed to
// children under every start method (nested ones too), concurrent updates, a client killed in the
// middle of a change, the manager killed, a corrupt heap, a full one.
#include <csignal>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "harness.hpp"
#include "ipc/managers.hpp"
#include "ipc/pool.hpp"
#include "managers/heap.hpp"
#include "managers/heap_layout.hpp"

using ipc::Process;
using ipc::StartMethod;
namespace test = ipc::test;

namespace {

using Dict = ipc::DictProxy<std::string, int>;
using List = ipc::ListProxy<int>;

/// The container a proxy refers to, as a white-box test reaches it.
template <class Proxy>
ipc::detail::ContainerRef ref_of(const Proxy& proxy, ipc::detail::ContainerKind kind, std::uint64_t key_tag,
                                 std::uint64_t value_tag) {
    std::vector<std::byte> bytes;
    ipc::codec::Writer writer(bytes);
    proxy.ipc_save(writer);
    ipc::codec::Reader reader(bytes);
    return ipc::detail::ContainerRef::load(reader, kind, key_tag, value_tag);
}

ipc::detail::ContainerRef dict_ref(const Dict& dict) {
    return ref_of(dict, ipc::detail::ContainerKind::dict, ipc::codec::registered_tag<std::string>(),
                  ipc::codec::registered_tag<int>());
}

ipc::detail::ContainerRef list_ref(const List& list) {
    return ref_of(list, ipc::detail::ContainerKind::list, 0, ipc::codec::registered_tag<int>());
}

int fill_from_child(Dict dict, List list, ipc::NamespaceProxy ns, int child) {
    for (int i = 0; i < 100; ++i) dict.set("child" + std::to_string(child) + "-" + std::to_string(i), i);
    for (int i = 0; i < 100; ++i) list.append(child * 1000 + i);
    ns.set("from_child", std::string("hello ") + std::to_string(child));
    return dict.get("parent", -1) == 7 ? 0 : 3;
}

int append_to_nested(ipc::DictProxy<std::string, List> lists) {
    lists.at("numbers").append(42);
    lists.at("numbers").extend({43, 44});
    return static_cast<int>(lists.at("numbers").size());
}

int hammer(Dict dict, List list, int child) {
    for (int i = 0; i < 2000; ++i) {
        dict.set(std::to_string(child) + ":" + std::to_string(i), i);
        list.append(child);
        if (i % 2 == 1) dict.erase(std::to_string(child) + ":" + std::to_string(i - 1));
    }
    return 0;
}

/// Takes the heap, makes a change halfway and dies holding it. Round 0: several changes of the
/// dict (a new key, a new value for an old one); 1: several of the list (a middle insert, which
/// makes a new table, and an append of 3000 bytes); 2: one change of the list, killed after it
/// allocated its blocks and before it committed.
int die_in_the_middle_of_a_change(Dict dict, List list, int round) {
    using Call = ipc::detail::ContainerCall;
    const auto encoded = [](const auto& value) { return ipc::encode(value); };
    if (round == 0) {
        Call call(dict_ref(dict), Call::Changes::several);
        call.dict_set(encoded(std::string("half-made")), std::vector<std::byte>(3000));
        call.dict_set(encoded(std::string("kept")), encoded(2));
        ::raise(SIGKILL);
    } else if (round == 1) {
        Call call(list_ref(list), Call::Changes::several);
        call.list_insert(0, encoded(99));
        call.list_insert(call.list_size(), std::vector<std::byte>(3000));
        ::raise(SIGKILL);
    } else {
        const auto ref = list_ref(list);
        Call call(ref);
        (void)ref.heap->allocate(3000);
        (void)ref.heap->allocate(100);
        ::raise(SIGKILL);
    }
    return 1;
}

/// Every kind of call on a heap that may have been written over: each either works or throws an
/// ipc::Error; a crash shows in the exit code, a hang in the bounded join.
int use_damaged_heap(Dict dict, List list) {
    const auto attempt = [](auto&& call) {
        try {
            call();
        } catch (const ipc::Error&) {
        }
    };
    attempt([&] { (void)dict.items(); });
    attempt([&] { (void)dict.get("k3"); });
    attempt([&] { dict.set("k3", 33); });
    attempt([&] { dict.set("new", 1); });
    attempt([&] { (void)dict.erase("k5"); });
    attempt([&] { (void)dict.popitem(); });
    attempt([&] { (void)list.copy(); });
    attempt([&] { list.append(7); });
    attempt([&] { list.insert(1, 8); });
    attempt([&] { list.sort(); });
    attempt([&] { (void)list.pop(0); });
    attempt([&] { list.clear(); });
    attempt([&] { dict.clear(); });
    return 0;
}

int read_blocks(ipc::SharedMemory block, ipc::ShareableList<int> numbers, ipc::ShareableList<std::string> words) {
    if (std::to_integer<int>(block.buf()[0]) != 42) return 2;
    block.buf()[1] = std::byte{43};
    numbers.set(0, numbers.at(2) * 10);
    return words.at(1) == "two" ? 0 : 3;
}

using Handles = ipc::DictProxy<std::string, ipc::Queue<int>>;

int use_managed_objects(Handles queues, ipc::Lock lock, ipc::Event event, ipc::Value<int> value, ipc::Array<int> array) {
    const auto job = queues.at("jobs").get(true, test::bound);
    std::lock_guard guard(lock);
    value = value.value() + job;
    array[1] = job;
    event.set();
    return job == 5 ? 0 : 2;
}

int square_into(Dict results, int x) {
    results.set(std::to_string(x), x * x);
    return x * x;
}

}  // namespace

TEST_CASE("a managed dict does what Python's dict does", "[managers]") {
    test::LeakCheck leaks;
    ipc::Manager manager;
    auto d = manager.dict<std::string, int>();
    CHECK(d.empty());
    d["a"] = 1;
    d.set("b", 2);
    CHECK(int(d["a"]) == 1);
    CHECK(d.at("b") == 2);
    CHECK(d.get("c") == std::nullopt);
    CHECK(d.get("c", 5) == 5);
    CHECK(test::error_of<ipc::KeyError>([&] { (void)d.at("zz"); }).find("no key 'zz'") != std::string::npos);
    CHECK(d.setdefault("a", 9) == 1);
    CHECK(d.setdefault("c", 3) == 3);
    CHECK(d.contains("c"));
    CHECK(d.keys() == std::vector<std::string>{"a", "b", "c"});
    CHECK(d.values() == std::vector<int>{1, 2, 3});
    d["a"] = 10;  // an existing key keeps its place
    CHECK(d.items() == std::vector<std::pair<std::string, int>>{{"a", 10}, {"b", 2}, {"c", 3}});
    CHECK(d.pop("b") == 2);
    CHECK(d.pop("b", -1) == -1);
    CHECK_THROWS_AS(d.pop("b"), ipc::KeyError);
    d.update({{"x", 24}, {"y", 25}});
    CHECK(d.popitem() == std::pair<std::string, int>{"y", 25});
    // A larger update builds a new table; a key given twice keeps its last value.
    std::vector<std::pair<std::string, int>> many;
    for (int i = 0; i < 50; ++i) many.emplace_back("u" + std::to_string(i % 40), i);
    d.update(many);
    CHECK(d.size() == 3 + 40);
    CHECK(d.at("u0") == 40);
    CHECK(d.at("u39") == 39);
    for (int i = 0; i < 40; ++i) d.erase("u" + std::to_string(i));
    CHECK(d.erase("x") == 1);
    CHECK(d.erase("x") == 0);
    CHECK(d.copy() == std::map<std::string, int>{{"a", 10}, {"c", 3}});
    CHECK(d.size() == 2);

    // Growth past many tables, erasures between, and the order kept throughout.
    std::vector<std::string> expected{"a", "c"};
    for (int i = 0; i < 3000; ++i) {
        d.set("k" + std::to_string(i), i);
        expected.push_back("k" + std::to_string(i));
    }
    for (int i = 0; i < 3000; i += 3) d.erase("k" + std::to_string(i));
    std::erase_if(expected, [](const std::string& k) { return k.size() > 1 && k[0] == 'k' && std::stoi(k.substr(1)) % 3 == 0; });
    CHECK(d.keys() == expected);
    CHECK(d.size() == expected.size());
    CHECK(d.at("k2999") == 2999);
    d.clear();
    CHECK(d.size() == 0);
    CHECK(test::error_of<ipc::KeyError>([&] { (void)d.popitem(); }).find("dictionary is empty") != std::string::npos);
}

TEST_CASE("a managed list does what Python's list does", "[managers]") {
    test::LeakCheck leaks;
    ipc::Manager manager;
    auto l = manager.list<int>({5, 3, 8});
    l.append(1);
    l.extend(std::vector<int>{9, 3});
    CHECK(l.copy() == std::vector<int>{5, 3, 8, 1, 9, 3});
    CHECK(int(l[0]) == 5);
    CHECK(l.at(-1) == 3);
    l[-2] = 7;
    CHECK(l.copy(1, -1) == std::vector<int>{3, 8, 1, 7});
    CHECK(l.copy(-2) == std::vector<int>{7, 3});
    CHECK(l.copy(4, 2).empty());
    l.insert(0, 100);
    l.insert(-1, 200);   // before the last
    l.insert(1000, 300);  // past the end: appended
    l.insert(-1000, 400);  // before the start: first
    CHECK(l.copy() == std::vector<int>{400, 100, 5, 3, 8, 1, 7, 200, 3, 300});
    CHECK(l.index(3) == 3);
    CHECK(l.index(3, 4) == 8);
    CHECK(l.count(3) == 2);
    CHECK(test::error_of<ipc::ValueError>([&] { (void)l.index(12345); }).find("not in list") != std::string::npos);
    l.remove(3);
    CHECK(l.count(3) == 1);
    CHECK_THROWS_AS(l.remove(12345), ipc::ValueError);
    CHECK(l.pop() == 300);
    CHECK(l.pop(0) == 400);
    CHECK(l.pop(-2) == 200);
    CHECK(test::error_of<ipc::IndexError>([&] { (void)l.at(50); }).find("list index out of range") != std::string::npos);
    CHECK_THROWS_AS(l[50] = 1, ipc::IndexError);
    CHECK_THROWS_AS(l.pop(50), ipc::IndexError);
    l.sort();
    CHECK(l.copy() == std::vector<int>{1, 3, 5, 7, 8, 100});
    l.sort(std::greater<>{});
    CHECK(l.copy() == std::vector<int>{100, 8, 7, 5, 3, 1});
    l.reverse();
    CHECK(l.copy() == std::vector<int>{1, 3, 5, 7, 8, 100});
    CHECK_THROWS_AS(l.sort([&](int a, int b) { return l.size() > 0 && a < b; }), ipc::ValueError);  // would wait for itself
    CHECK(l.size() == 6);
    for (int i = 0; i < 5000; ++i) l.append(i);
    CHECK(l.size() == 5006);
    CHECK(l.at(5005) == 4999);
    l.clear();
    CHECK(l.empty());
    CHECK(test::error_of<ipc::IndexError>([&] { (void)l.pop(); }).find("pop from empty list") != std::string::npos);
}

TEST_CASE("a managed Namespace holds named values of any type", "[managers]") {
    test::LeakCheck leaks;
    ipc::Manager manager;
    auto ns = manager.Namespace();
    ns.set("x", 1);
    ns.set("name", std::string("ipc"));
    ns.set("weights", std::vector<double>{0.5, 0.25});
    CHECK(ns.get<int>("x") == 1);
    CHECK(ns.get<std::string>("name") == "ipc");
    CHECK(ns.get<std::vector<double>>("weights") == std::vector<double>{0.5, 0.25});
    CHECK_THROWS_AS(ns.get<double>("x"), ipc::CodecError);
    CHECK(test::error_of<ipc::AttributeError>([&] { (void)ns.get<int>("missing"); }).find("no attribute 'missing'") !=
          std::string::npos);
    CHECK(ns.names() == std::vector<std::string>{"x", "name", "weights"});
    ns.erase("x");
    CHECK_FALSE(ns.contains("x"));
    CHECK_THROWS_AS(ns.erase("x"), ipc::AttributeError);
}

TEST_CASE("proxies passed to a child reach the same dict list and Namespace", "[managers]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Manager manager(ipc::ManagerOptions{.start_method = method});
    auto d = manager.dict<std::string, int>();
    auto l = manager.list<int>();
    auto ns = manager.Namespace();
    d["parent"] = 7;
    CHECK(test::run(method, fill_from_child, d, l, ns, 1) == 0);
    CHECK(d.size() == 101);
    CHECK(d.at("child1-99") == 99);
    CHECK(l.size() == 100);
    CHECK(l.at(0) == 1000);
    CHECK(ns.get<std::string>("from_child") == "hello 1");
}

TEST_CASE("a dict whose values are list proxies is shared with a child", "[managers]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Manager manager(ipc::ManagerOptions{.start_method = method});
    auto lists = manager.dict<std::string, List>();
    lists["numbers"] = manager.list<int>({41});
    CHECK(test::run(method, append_to_nested, lists) == 4);
    CHECK(lists.at("numbers").copy() == std::vector<int>{41, 42, 43, 44});
    // A proxy read back is the same list.
    CHECK(lists.at("numbers") == lists.at("numbers"));
}

TEST_CASE("four processes updating one dict and one list lose no update", "[managers]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Manager manager(ipc::ManagerOptions{.start_method = method});
    auto d = manager.dict<std::string, int>();
    auto l = manager.list<int>();
    std::vector<Process> children;
    for (int child = 0; child < 4; ++child)
        children.emplace_back(ipc::ProcessOptions{.start_method = method}, hammer, d, l, child);
    for (auto& child : children) child.start();
    for (auto& child : children) CHECK(test::join_bounded(child) == 0);
    CHECK(d.size() == 4 * 1000);
    CHECK(l.size() == 4 * 2000);
    for (int child = 0; child < 4; ++child) {
        CHECK(l.count(child) == 2000);
        CHECK(d.at(std::to_string(child) + ":1999") == 1999);
        CHECK_FALSE(d.contains(std::to_string(child) + ":1998"));
    }
}

TEST_CASE("a Pool task fills a managed results dict", "[managers]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Manager manager(ipc::ManagerOptions{.start_method = method});
    auto results = manager.dict<std::string, int>();
    {
        ipc::Pool pool(ipc::PoolOptions{.processes = 2, .start_method = method});
        std::vector<std::tuple<Dict, int>> tasks;
        for (int x = 0; x < 20; ++x) tasks.emplace_back(results, x);
        const auto squares = pool.starmap(square_into, tasks);
        CHECK(squares.size() == 20);
    }
    CHECK(results.size() == 20);
    CHECK(results.at("19") == 361);
}

TEST_CASE("a client killed in the middle of a change leaves the containers as they were", "[managers]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    // A small heap: were the dead clients' blocks not given back, it would run out.
    ipc::Manager manager(ipc::ManagerOptions{.heap_size = 64 * 1024, .start_method = method});
    auto d = manager.dict<std::string, int>({{"kept", 1}});
    auto l = manager.list<int>({1, 2, 3, 4, 5, 6, 7, 8});  // full: the next append grows it
    for (int round = 0; round < 30; ++round) {
        CHECK(test::run(method, die_in_the_middle_of_a_change, d, l, round % 3) == -SIGKILL);
        CHECK(d.items() == std::vector<std::pair<std::string, int>>{{"kept", 1}});
        CHECK(l.copy() == std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8});
    }
    d.set("after", 2);
    l.append(9);
    CHECK(d.size() == 2);
    CHECK(l.size() == 9);
}

TEST_CASE("after a client killed in the middle of a change no block is handed out twice", "[managers]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Manager manager(ipc::ManagerOptions{.heap_size = 16 * 1024, .start_method = method});
    auto d = manager.dict<std::string, int>({{"kept", 1}});
    auto l = manager.list<int>({1, 2, 3, 4, 5, 6, 7, 8});
    // The killed client's roll-back lists every unreachable block as free, this process's reserve
    // of small blocks too: it must not hand them out from its reserve as well.
    CHECK(test::run(method, die_in_the_middle_of_a_change, d, l, 2) == -SIGKILL);
    std::vector<int> expected = l.copy();
    try {
        for (int i = 100;; ++i) {
            l.append(i);
            expected.push_back(i);
        }
    } catch (const ipc::MemoryError&) {
    }
    CHECK(expected.size() > 100);
    CHECK(l.copy() == expected);
    CHECK(d.items() == std::vector<std::pair<std::string, int>>{{"kept", 1}});
}

TEST_CASE("proxies of a killed manager fail with ManagerError instead of hanging", "[managers]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Manager manager(ipc::ManagerOptions{.start_method = method});
    auto d = manager.dict<std::string, int>();
    d["a"] = 1;
    REQUIRE(manager.pid());
    ::kill(*manager.pid(), SIGKILL);
    std::string message;
    CHECK(test::eventually([&] {
        try {
            d["a"] = 2;
            return false;
        } catch (const ipc::ManagerError& error) {
            message = error.what();
            return true;
        }
    }));
    CHECK(message.find("is gone") != std::string::npos);
    manager.shutdown();
    CHECK(test::error_of<ipc::ManagerError>([&] { (void)d.size(); }).find("shut down") != std::string::npos);
    CHECK_THROWS_AS((manager.dict<int, int>()), ipc::ManagerError);
}

TEST_CASE("proxies fail with ManagerError once the manager shut down and leave nothing behind", "[managers]") {
    test::LeakCheck leaks;
    auto l = [] {
        ipc::Manager manager;
        auto list = manager.list<int>({1});
        CHECK(list.size() == 1);
        return list;
    }();
    CHECK(test::error_of<ipc::ManagerError>([&] { l.append(2); }).find("shut down") != std::string::npos);
}

TEST_CASE("a proxy loaded as other types than its container's is refused", "[managers]") {
    test::LeakCheck leaks;
    ipc::Manager manager;
    auto d = manager.dict<std::string, int>();
    const auto bytes = ipc::encode(d);
    CHECK_THROWS_AS((ipc::decode<ipc::DictProxy<std::string, double>>(bytes)), ipc::CodecError);
    CHECK_THROWS_AS(ipc::decode<ipc::ListProxy<int>>(ipc::encode(manager.list<double>())), ipc::CodecError);
    CHECK(ipc::decode<Dict>(bytes) == d);
}

TEST_CASE("a full manager heap is a MemoryError that leaves the container whole", "[managers]") {
    test::LeakCheck leaks;
    ipc::Manager manager(ipc::ManagerOptions{.heap_size = 64 * 1024, .max_objects = 4});
    auto d = manager.dict<std::string, std::string>();
    d["small"] = "x";
    CHECK(test::error_of<ipc::MemoryError>([&] { d["big"] = std::string(100 * 1024, 'y'); }).find("heap_size") !=
          std::string::npos);
    CHECK(d.keys() == std::vector<std::string>{"small"});
    // Values that fit, up to the heap's end: the failed call gave its blocks back.
    int stored = 0;
    try {
        for (; stored < 1000; ++stored) d[std::to_string(stored)] = std::string(1000, 'z');
    } catch (const ipc::MemoryError&) {
    }
    CHECK(stored > 20);
    CHECK(d.size() == static_cast<std::size_t>(stored) + 1);
    // Emptied, the heap has room for one large value again: its small free blocks are merged.
    d.clear();
    d["large"] = std::string(24 * 1024, 'w');
    CHECK(d.at("large").size() == 24 * 1024);
    (void)manager.list<int>();
    (void)manager.list<int>();
    (void)manager.list<int>();
    CHECK(test::error_of<ipc::MemoryError>([&] { (void)manager.list<int>(); }).find("max_objects") != std::string::npos);
}

TEST_CASE("a corrupt manager heap is a CorruptSegmentError for every proxy and never a crash", "[managers]") {
    test::LeakCheck leaks;
    ipc::Manager manager;
    auto d = manager.dict<std::string, int>({{"a", 1}});
    auto l = manager.list<int>({1, 2});
    const auto heap = dict_ref(d).heap;
    auto& header = *heap->segment()->at<ipc::detail::heap::HeapHeader>();
    auto* slots = heap->segment()->at<ipc::detail::heap::ContainerSlot>(header.containers_offset);
    SECTION("a container's table offset points outside the arena") { slots[0].root = header.arena_end + 4096; }
    SECTION("a dict's counts exceed its table") {
        auto* table = heap->segment()->at<ipc::detail::heap::DictTable>(slots[0].root + ipc::detail::heap::block_header_size);
        table->used = std::uint64_t{1} << 40;  // far past the table, and past the heap
    }
    SECTION("a block header claims a size past the arena") {
        auto* block = heap->segment()->at<ipc::detail::heap::BlockHeader>(slots[0].root);
        block->size_class = 39;
    }
    SECTION("a free list points into a used block") {
        // Every list: the smallest blocks come from a process's own reserve, larger ones from these.
        for (auto size_class = ipc::detail::heap::min_class; size_class <= ipc::detail::heap::max_class; ++size_class)
            header.free_heads[size_class] = slots[1].root;
    }
    const auto message = test::error_of<ipc::CorruptSegmentError>([&] {
        d[std::string(100, 'x')] = 4;  // a key too large for the smallest blocks
        d["b"] = 2;
        d["c"] = 3;
        (void)d.items();
    });
    CHECK(message.find("manager heap") != std::string::npos);
    // Marked corrupt for everyone.
    CHECK_THROWS_AS(l.append(3), ipc::CorruptSegmentError);
}

TEST_CASE("random 8-byte writes into a manager heap never crash or hang its proxies", "[managers]") {
    test::LeakCheck leaks;
    std::mt19937_64 random(20261207);  // a fixed seed, so that a failure reproduces
    for (int round = 0; round < 40; ++round) {
        INFO("round " << round);
        ipc::Manager manager(ipc::ManagerOptions{.heap_size = 64 * 1024, .max_objects = 8});
        auto d = manager.dict<std::string, int>();
        for (int i = 0; i < 12; ++i) d.set("k" + std::to_string(i), i);
        auto l = manager.list<int>({5, 4, 3, 2, 1});
        const auto heap = dict_ref(d).heap;
        const auto payload = heap->segment()->payload();
        const auto used = heap->segment()->at<ipc::detail::heap::HeapHeader>()->bump;
        // Anywhere in what is in use but the lock word (a random owner that happens to be alive
        // would hold it as a frozen holder does).
        const auto lock_end = sizeof(ipc::detail::LockWord);
        const auto offset = lock_end + (random() % ((used - lock_end) / 8)) * 8;
        const auto bytes = random();
        REQUIRE(offset + 8 <= payload.size());
        std::memcpy(payload.data() + offset, &bytes, sizeof bytes);
        CHECK(test::run(ipc::StartMethod::fork, use_damaged_heap, d, l) == 0);
    }
}

TEST_CASE("a SharedMemoryManager's blocks are shared with children and removed at shutdown", "[managers]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    std::string block_name;
    std::string list_name;
    {
        ipc::SharedMemoryManager smm(ipc::ManagerOptions{.start_method = method});
        auto block = smm.SharedMemory(128);
        CHECK(block.size() >= 128);
        CHECK(std::to_integer<int>(block.buf()[5]) == 0);
        block.buf()[0] = std::byte{42};
        auto numbers = smm.ShareableList<int>({1, 2, 3});
        auto words = smm.ShareableList<std::string>({"one", "two"});
        CHECK(test::run(method, read_blocks, block, numbers, words) == 0);
        CHECK(std::to_integer<int>(block.buf()[1]) == 43);
        CHECK(numbers.to_vector() == std::vector<int>{30, 2, 3});
        block_name = block.name();
        list_name = numbers.shm().name();
        CHECK_NOTHROW(ipc::SharedMemory(block_name));
        smm.shutdown();
        // The handles keep their mapping; the names are gone.
        CHECK(std::to_integer<int>(block.buf()[0]) == 42);
        CHECK_THROWS_AS(ipc::SharedMemory(block_name), ipc::FileNotFoundError);
        CHECK_THROWS_AS(ipc::ShareableList<int>(list_name), ipc::FileNotFoundError);
        CHECK_THROWS_AS(smm.SharedMemory(8), ipc::ManagerError);
    }
}

TEST_CASE("a killed SharedMemoryManager leaves no block behind", "[managers]") {
    test::LeakCheck leaks;
    ipc::SharedMemoryManager smm;
    auto block = smm.SharedMemory(64);
    const auto name = block.name();
    REQUIRE(smm.pid());
    ::kill(*smm.pid(), SIGKILL);
    // The resource tracker removes what the killed manager process made.
    CHECK(test::eventually([&] { return !std::filesystem::exists("/dev/shm/" + name); }));
    CHECK_THROWS_AS(smm.SharedMemory(8), ipc::ManagerError);
}

TEST_CASE("managed queues locks and values live until the manager shuts down", "[managers]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Manager manager(ipc::ManagerOptions{.start_method = method});
    auto queues = manager.dict<std::string, ipc::Queue<int>>();
    {
        // Only the manager holds the queue once this scope ends; a child opens it by name later.
        auto jobs = manager.Queue<int>();
        jobs.put(5);
        queues["jobs"] = jobs;
    }
    auto lock = manager.Lock();
    auto event = manager.Event();
    auto value = manager.Value<int>(10);
    auto array = manager.Array<int>(std::size_t{3});
    CHECK(test::run(method, use_managed_objects, queues, lock, event, value, array) == 0);
    CHECK(event.is_set());
    CHECK(value.value() == 15);
    CHECK(array[1] == 5);
    // The others as Python's SyncManager makes them.
    auto joinable = manager.JoinableQueue<std::string>(4);
    joinable.put("x");
    CHECK(joinable.get(true, test::bound) == "x");
    joinable.task_done();
    CHECK(manager.Semaphore(2).get_value() == 2);
    CHECK(manager.BoundedSemaphore().get_value() == 1);
    CHECK(manager.Barrier(1).wait() == 0);
    auto rlock = manager.RLock();
    auto condition = manager.Condition(rlock);
    {
        std::lock_guard guard(condition);
        condition.notify_all();
    }
    manager.shutdown();
    CHECK_THROWS_AS(manager.Lock(), ipc::ManagerError);
}
