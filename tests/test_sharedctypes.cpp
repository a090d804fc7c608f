// Value, RawValue, Array and RawArray: shared with fork and spawn children, the seed's lock example,
// atomic operations, bounds and header checks.
#include <mutex>
#include <numeric>

#include <type_traits>

#include "harness.hpp"
#include "ipc/sharedctypes.hpp"

using ipc::Process;
using ipc::StartMethod;
namespace test = ipc::test;

namespace {

constexpr long seed_rounds = 1'000'000;

/// 0 when the value's lock is held elsewhere, 1 when this process could take it.
int try_value_lock(ipc::Value<int> value) {
    auto& lock = value.get_lock();
    if (!lock.try_lock()) return 0;
    lock.release();
    return 1;
}

/// The seed's lock example: add and subtract i under the value's lock; also count every round.
void add_and_subtract(ipc::Value<long> total, ipc::Value<long> rounds) {
    for (long i = 0; i < seed_rounds; ++i) {
        std::lock_guard guard(total.get_lock());
        total = total.value() + i;
        total = total.value() - i;
        rounds.get_obj() += 1;  // unsynchronised on purpose: `total`'s lock protects it too
    }
}

void add_atomically(ipc::RawValue<std::int64_t> counter, int times) {
    for (int i = 0; i < times; ++i) counter.fetch_add(1);
}

struct Point {
    double x;
    double y;
};

int move_point(ipc::Value<Point> point) {
    const auto p = point.value();
    point = Point{p.x + 1, p.y * 2};
    return 0;
}

int square_elements(ipc::Array<int> numbers) {
    std::lock_guard guard(numbers.get_lock());
    for (auto& n : numbers) n *= n;
    return static_cast<int>(numbers.size());
}

int open_by_name(std::string name) {
    auto numbers = ipc::RawArray<double>::open(name);
    numbers[0] = 42.5;
    return static_cast<int>(numbers.size());
}

}  // namespace

TEST_CASE("four processes add and subtract under the value's lock and end at exactly zero", "[sharedctypes]") {
    IPC_EACH_START_METHOD(method);
    test::LeakCheck leaks;
    ipc::Value<long> total(0);
    ipc::Value<long> rounds(0);
    std::vector<Process> workers;
    for (int i = 0; i < 4; ++i) workers.emplace_back(ipc::ProcessOptions{.start_method = method}, add_and_subtract, total, rounds);
    for (auto& worker : workers) worker.start();
    for (auto& worker : workers) CHECK(test::join_bounded(worker) == 0);
    CHECK(total.value() == 0);
    CHECK(rounds.value() == 4 * seed_rounds);
}

TEST_CASE("atomic operations on a RawValue lose no update across processes", "[sharedctypes]") {
    IPC_EACH_START_METHOD(method);
    ipc::RawValue<std::int64_t> counter;
    std::vector<Process> workers;
    for (int i = 0; i < 4; ++i) workers.emplace_back(ipc::ProcessOptions{.start_method = method}, add_atomically, counter, 100'000);
    for (auto& worker : workers) worker.start();
    for (auto& worker : workers) CHECK(test::join_bounded(worker) == 0);
    CHECK(counter.load() == 400'000);
    std::int64_t expected = 400'000;
    CHECK(counter.compare_exchange(expected, 1));
    CHECK_FALSE(counter.compare_exchange(expected, 2));
    CHECK(expected == 1);
    CHECK(counter.exchange(5) == 1);
    CHECK(counter.fetch_sub(2) == 5);
    CHECK(counter.value() == 3);
}

TEST_CASE("a Value of a struct crosses to a child and back", "[sharedctypes]") {
    IPC_EACH_START_METHOD(method);
    ipc::Value<Point> point(Point{1.0, 1.5});
    CHECK(test::run(method, move_point, point) == 0);
    CHECK(point.value().x == 2.0);
    CHECK(point.value().y == 3.0);
}

TEST_CASE("values start at zero or the given value", "[sharedctypes]") {
    ipc::Value<int> zero;
    CHECK(zero.value() == 0);
    ipc::RawValue<double> given(2.5);
    CHECK(given.value() == 2.5);
    given = 4.0;
    CHECK(given.get_obj() == 4.0);
}

TEST_CASE("an Array is shared with a child under its lock", "[sharedctypes]") {
    IPC_EACH_START_METHOD(method);
    ipc::Array<int> numbers{1, 2, 3, 4};
    CHECK(test::run(method, square_elements, numbers) == 4);
    CHECK(numbers.to_vector() == std::vector<int>{1, 4, 9, 16});
    CHECK(std::accumulate(numbers.begin(), numbers.end(), 0) == 30);
    CHECK(numbers.span().size() == 4);
}

TEST_CASE("Array indexing is bounds-checked by at() and assign() checks the size", "[sharedctypes]") {
    ipc::Array<int> numbers(3);
    CHECK(numbers.to_vector() == std::vector<int>{0, 0, 0});
    CHECK_THROWS_AS(numbers.at(3), ipc::IndexError);
    CHECK_THROWS_WITH(numbers.at(7), Catch::Contains("index 7") && Catch::Contains("size 3"));
    numbers.at(2) = 9;
    CHECK(numbers[2] == 9);
    const std::vector<int> two{1, 2};
    CHECK_THROWS_AS(numbers.assign(two), ipc::ValueError);
    const std::vector<int> three{5, 6, 7};
    numbers.assign(three);
    CHECK(numbers.to_vector() == three);
    CHECK_THROWS_AS(ipc::Array<int>(0), ipc::ValueError);
    ipc::RawArray<int> from_vector(three);
    CHECK(from_vector.to_vector() == three);
}

TEST_CASE("a named RawArray is opened by name in a child", "[sharedctypes]") {
    IPC_EACH_START_METHOD(method);
    const auto name = test::unique_name("array");
    auto numbers = ipc::RawArray<double>::create(name, 5);
    CHECK(test::run(method, open_by_name, name) == 5);
    CHECK(numbers[0] == 42.5);
    numbers.unlink();
}

TEST_CASE("opening a value as another element type or kind names both", "[sharedctypes]") {
    const auto name = test::unique_name("typed");
    auto value = ipc::Value<long>::create(name, 3);
    CHECK_THROWS_AS(ipc::Value<double>::open(name), ipc::ValueError);
    CHECK_THROWS_WITH(ipc::Value<double>::open(name), Catch::Contains("long") && Catch::Contains("double"));
    CHECK_THROWS_WITH(ipc::RawValue<long>::open(name), Catch::Contains("RawValue") && Catch::Contains("Value"));
    CHECK_THROWS_WITH(ipc::Array<long>::open(name), Catch::Contains("Array"));
    CHECK(ipc::Value<long>::open(name).value() == 3);
    value.unlink();
    CHECK_THROWS_AS(ipc::Value<long>::open(name), ipc::FileNotFoundError);
}

TEST_CASE("get_lock() is the same lock object on every call of one handle", "[sharedctypes]") {
    ipc::Value<int> value(1);
    ipc::Array<int> array(3);
    static_assert(std::is_lvalue_reference_v<decltype(value.get_lock())>);
    static_assert(std::is_lvalue_reference_v<decltype(array.get_lock())>);
    CHECK(&value.get_lock() == &value.get_lock());
    CHECK(&array.get_lock() == &array.get_lock());
    std::unique_lock held(array.get_lock());
    CHECK(array.get_lock().is_owned());
    CHECK(array.get_lock().locked());
    held.unlock();
    CHECK_FALSE(array.get_lock().locked());
}

TEST_CASE("the value's lock is recursive and shared by its copies and by children", "[sharedctypes]") {
    IPC_EACH_START_METHOD(method);
    ipc::Value<int> value(1);
    const ipc::Value<int> copy = value;
    std::lock_guard guard(value.get_lock());  // Python's `with value.get_lock():`
    value = value.value() + 1;  // value() and set() take the same lock again
    CHECK(copy.get_lock().is_owned());  // the copy's lock is the same lock
    CHECK(copy.value() == 2);
    CHECK(test::run(method, try_value_lock, copy) == 0);  // held here, so not free there
}
