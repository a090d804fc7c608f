// Padding never leaves a process: raw values sent through the codec, a Queue or a Pipe, and values
// stored in shared memory, have their padding bytes zeroed, whatever the sender's memory held there.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <vector>

#include "harness.hpp"
#include "ipc/codec.hpp"
#include "ipc/connection.hpp"
#include "ipc/queues.hpp"
#include "ipc/sharedctypes.hpp"

namespace test = ipc::test;

/// Without __builtin_clear_padding (Clang) padding goes as it lies: nothing to test.
#define SKIP_WITHOUT_CLEARED_PADDING()                                                        \
    if constexpr (!ipc::codec::clears_padding) {                                              \
        WARN("this compiler cannot find padding (no __builtin_clear_padding): nothing zeroed"); \
        return;                                                                               \
    }

namespace {

/// 3 bytes of padding after `tag`, 6 after `flags` (x86-64 and every common 64-bit ABI).
struct Padded {
    std::uint8_t tag;
    std::uint32_t count;
    double weight;
    std::uint16_t flags;
    friend bool operator==(const Padded&, const Padded&) = default;
};
static_assert(sizeof(Padded) == 24);

/// Eight bytes, so a Value of it takes the lock-free atomic path; 3 bytes of padding.
struct SmallPadded {
    std::uint8_t tag;
    std::uint32_t count;
};
static_assert(sizeof(SmallPadded) == 8);

/// Padding inside a byte: the 3 bits after `low`.
struct Bits {
    std::uint8_t low : 5;
    std::uint8_t high;
};

constexpr std::byte garbage{0xA5};

/// Makes the compiler keep every byte of `value` as written: without it, a memset followed by
/// stores to every field is dead in the padding, and the padding holds whatever the stack held.
template <class T>
void keep_bytes(T& value) {
    asm volatile("" : : "r"(&value) : "memory");
}

/// A Padded whose padding holds `garbage`, as a value assembled in reused memory would.
Padded dirty_padded(std::uint32_t count) {
    Padded value;
    std::memset(&value, std::to_integer<int>(garbage), sizeof value);
    keep_bytes(value);
    value.tag = 7;
    value.count = count;
    value.weight = 2.5;
    value.flags = 0x0102;
    return value;
}

SmallPadded dirty_small(std::uint32_t count) {
    SmallPadded value;
    std::memset(&value, std::to_integer<int>(garbage), sizeof value);
    keep_bytes(value);
    value.tag = 3;
    value.count = count;
    return value;
}

/// The offsets of Padded's padding bytes.
constexpr std::size_t padded_padding[] = {1, 2, 3, 18, 19, 20, 21, 22, 23};

/// The padding bytes of the `count` Padded's at `bytes` that are not zero.
std::size_t dirty_padding_bytes(const std::byte* bytes, std::size_t count) {
    std::size_t dirty = 0;
    for (std::size_t element = 0; element < count; ++element)
        for (const std::size_t offset : padded_padding)
            if (bytes[element * sizeof(Padded) + offset] != std::byte{0}) ++dirty;
    return dirty;
}

std::size_t dirty_padding_bytes(const Padded& value) {
    return dirty_padding_bytes(reinterpret_cast<const std::byte*>(&value), 1);
}

int put_dirty(ipc::Queue<Padded> single, ipc::Queue<std::vector<Padded>> many) {
    single.put(dirty_padded(1));
    many.put(std::vector<Padded>(100, dirty_padded(2)));
    return 0;
}

int send_dirty(ipc::Connection out) {
    out.send(dirty_padded(3));
    out.send(std::vector<Padded>(5, dirty_padded(4)));
    return 0;
}

int store_dirty(ipc::Value<Padded> value, ipc::RawValue<SmallPadded> small, ipc::Array<Padded> array) {
    value.set(dirty_padded(5));
    small.store(dirty_small(6));
    array.assign(std::vector<Padded>(array.size(), dirty_padded(7)));
    return 0;
}

}  // namespace

TEST_CASE("the codec zeroes the padding of raw values, vectors and long doubles", "[codec][padding]") {
    SKIP_WITHOUT_CLEARED_PADDING();
    const auto header = sizeof(std::uint64_t);  // the type tag

    REQUIRE(dirty_padding_bytes(dirty_padded(9)) == std::size(padded_padding));  // the test's own premise
    const auto one = ipc::encode(dirty_padded(9));
    REQUIRE(one.size() == header + sizeof(Padded));
    CHECK(dirty_padding_bytes(one.data() + header, 1) == 0);
    CHECK(ipc::decode<Padded>(one) == dirty_padded(9));

    const std::vector<Padded> values(10, dirty_padded(8));
    const auto many = ipc::encode(values);
    REQUIRE(many.size() == 2 * header + 10 * sizeof(Padded));
    CHECK(dirty_padding_bytes(many.data() + 2 * header, 10) == 0);
    CHECK(ipc::decode<std::vector<Padded>>(many) == values);

    std::array<Padded, 3> array;
    array.fill(dirty_padded(4));
    const auto arrays = ipc::encode(array);
    CHECK(dirty_padding_bytes(arrays.data() + header, 3) == 0);

    Bits bits;
    std::memset(&bits, 0xFF, sizeof bits);
    bits.low = 1;
    bits.high = 2;
    const auto bit_message = ipc::encode(bits);
    CHECK(std::to_integer<int>(bit_message[header]) == 1);  // the 3 bits above `low` are padding
    CHECK(ipc::decode<Bits>(bit_message).high == 2);

    // long double: 10 value bytes and 6 of padding on x86-64, through cereal's path as well
    if (ipc::detail::has_padding<long double>()) {
        long double number;
        std::memset(&number, std::to_integer<int>(garbage), sizeof number);
        number = 1.5L;
        const std::deque<long double> numbers{number, number};
        const auto through_cereal = ipc::encode(numbers);
        const auto garbage_bytes = std::count(through_cereal.begin() + header, through_cereal.end(), garbage);
        CHECK(garbage_bytes == 0);
        CHECK(ipc::decode<std::deque<long double>>(through_cereal) == numbers);
    }
}

TEST_CASE("a Queue and a Pipe deliver raw values without the sender's padding", "[queues][connection][padding]") {
    SKIP_WITHOUT_CLEARED_PADDING();
    IPC_EACH_START_METHOD(method);
    ipc::Queue<Padded> single;
    ipc::Queue<std::vector<Padded>> many;
    CHECK(test::run(method, put_dirty, single, many) == 0);
    const Padded received = single.get(true, test::bound);
    CHECK(received == dirty_padded(1));
    CHECK(dirty_padding_bytes(received) == 0);
    const auto received_many = many.get(true, test::bound);
    REQUIRE(received_many.size() == 100);
    CHECK(dirty_padding_bytes(reinterpret_cast<const std::byte*>(received_many.data()), received_many.size()) == 0);

    auto [in, out] = ipc::Pipe(false);
    CHECK(test::run(method, send_dirty, std::move(out)) == 0);
    REQUIRE(in.poll(test::bound));
    const auto sent = in.recv<Padded>();
    CHECK(sent == dirty_padded(3));
    CHECK(dirty_padding_bytes(sent) == 0);
    REQUIRE(in.poll(test::bound));
    const auto sent_many = in.recv<std::vector<Padded>>();
    REQUIRE(sent_many.size() == 5);
    CHECK(dirty_padding_bytes(reinterpret_cast<const std::byte*>(sent_many.data()), sent_many.size()) == 0);
}

TEST_CASE("shared values and arrays store no padding, and compare_exchange compares values only", "[sharedctypes][padding]") {
    SKIP_WITHOUT_CLEARED_PADDING();
    IPC_EACH_START_METHOD(method);
    ipc::Value<Padded> value;
    ipc::RawValue<SmallPadded> small;
    ipc::Array<Padded> array(4);
    CHECK(test::run(method, store_dirty, value, small, array) == 0);
    CHECK(value.value() == dirty_padded(5));
    CHECK(dirty_padding_bytes(value.get_obj()) == 0);
    CHECK(dirty_padding_bytes(reinterpret_cast<const std::byte*>(array.begin()), array.size()) == 0);
    const auto small_bytes = reinterpret_cast<const std::byte*>(&small.get_obj());
    CHECK((small_bytes[1] == std::byte{0} && small_bytes[2] == std::byte{0} && small_bytes[3] == std::byte{0}));

    // A caller's expected value whose padding differs from the stored one's still matches.
    SmallPadded expected = dirty_small(6);
    CHECK(small.compare_exchange(expected, dirty_small(7)));
    CHECK(small.load().count == 7);
    CHECK(small_bytes[1] == std::byte{0});

    const ipc::Value<Padded> created(dirty_padded(11));
    CHECK(dirty_padding_bytes(created.get_obj()) == 0);
}
