// ipc/codec.hpp — turns values into bytes and back, for Process arguments, Pipe, Queue and Pool.
// Trivially copyable types travel as raw bytes, ipc handles by name, everything else through cereal.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <complex>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include <cereal/cereal.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/bitset.hpp>
#include <cereal/types/chrono.hpp>
#include <cereal/types/complex.hpp>
#include <cereal/types/deque.hpp>
#include <cereal/types/list.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/unordered_set.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#include "ipc/detail/codec_stream.hpp"
#include "ipc/detail/padding.hpp"
#include "ipc/detail/type_name.hpp"
#include "ipc/error.hpp"

namespace ipc::codec {

/// Appends `count` raw values to `writer` with their padding zeroed (see ipc/detail/padding.hpp).
template <class T>
void write_values(Writer& writer, const T* values, std::size_t count) {
    auto& buffer = writer.buffer();
    const auto at = buffer.size();
    writer.write(values, count * sizeof(T));
    ipc::detail::clear_padding<T>(buffer.data() + at, count);
}

namespace detail {
/// The fewest bytes the codec writes for one T through cereal (its count, for a container): how
/// many bytes a count of T elements needs at least. 1 where it cannot tell (a user's own cereal
/// functions may write anything), never 0: so a count is checked at worst against the bytes left.
template <class T>
struct MinEncodedSize : std::integral_constant<std::uint64_t, 1> {};
template <class T>
inline constexpr std::uint64_t min_encoded_size_v = MinEncodedSize<std::remove_cv_t<T>>::value;

template <class T>
    requires std::is_arithmetic_v<T> || std::is_enum_v<T>
struct MinEncodedSize<T> : std::integral_constant<std::uint64_t, sizeof(T)> {};
template <class A, class B>
struct MinEncodedSize<std::pair<A, B>>
    : std::integral_constant<std::uint64_t, min_encoded_size_v<A> + min_encoded_size_v<B>> {};
template <class... Ts>
struct MinEncodedSize<std::tuple<Ts...>> : std::integral_constant<std::uint64_t, (std::uint64_t{0} + ... + min_encoded_size_v<Ts>)> {};
template <class E, std::size_t N>
struct MinEncodedSize<std::array<E, N>> : std::integral_constant<std::uint64_t, N * min_encoded_size_v<E>> {};
template <class T>
struct MinEncodedSize<std::optional<T>> : std::integral_constant<std::uint64_t, 1> {};  // the "empty" flag
template <class... Ts>
struct MinEncodedSize<std::variant<Ts...>> : std::integral_constant<std::uint64_t, sizeof(std::int32_t)> {};  // the index
template <class T>
struct MinEncodedSize<std::complex<T>> : std::integral_constant<std::uint64_t, 2 * sizeof(T)> {};
template <class Rep, class Period>
struct MinEncodedSize<std::chrono::duration<Rep, Period>> : MinEncodedSize<Rep> {};
template <class Clock, class Duration>
struct MinEncodedSize<std::chrono::time_point<Clock, Duration>> : MinEncodedSize<Duration> {};

/// The standard containers cereal writes as a count, then the elements: a count of at least
/// `counted_element_bytes` each. (Another type with a value_type may write anything.)
template <class T>
inline constexpr bool is_counted_v = false;
template <class C, class Tr, class A>
inline constexpr bool is_counted_v<std::basic_string<C, Tr, A>> = true;
template <class T, class A>
inline constexpr bool is_counted_v<std::vector<T, A>> = true;
template <class T, class A>
inline constexpr bool is_counted_v<std::deque<T, A>> = true;
template <class T, class A>
inline constexpr bool is_counted_v<std::list<T, A>> = true;
template <class K, class C, class A>
inline constexpr bool is_counted_v<std::set<K, C, A>> = true;
template <class K, class C, class A>
inline constexpr bool is_counted_v<std::multiset<K, C, A>> = true;
template <class K, class V, class C, class A>
inline constexpr bool is_counted_v<std::map<K, V, C, A>> = true;
template <class K, class V, class C, class A>
inline constexpr bool is_counted_v<std::multimap<K, V, C, A>> = true;
template <class K, class H, class E, class A>
inline constexpr bool is_counted_v<std::unordered_set<K, H, E, A>> = true;
template <class K, class H, class E, class A>
inline constexpr bool is_counted_v<std::unordered_multiset<K, H, E, A>> = true;
template <class K, class V, class H, class E, class A>
inline constexpr bool is_counted_v<std::unordered_map<K, V, H, E, A>> = true;
template <class K, class V, class H, class E, class A>
inline constexpr bool is_counted_v<std::unordered_multimap<K, V, H, E, A>> = true;

template <class T>
    requires is_counted_v<T>
struct MinEncodedSize<T> : std::integral_constant<std::uint64_t, sizeof(cereal::size_type)> {};

/// What each element of a T's count takes at least; 1 for a count that is no counted container's.
template <class T>
constexpr std::uint64_t counted_element_bytes() noexcept {
    if constexpr (is_counted_v<T>) return std::max<std::uint64_t>(min_encoded_size_v<typename T::value_type>, 1);
    else return 1;
}
}  // namespace detail

/// cereal archives that write into a Writer and read from a Reader: no iostream in between, and a
/// count larger than the bytes left can hold is a CodecError before anything is allocated.
class OutputArchive : public cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision> {
public:
    explicit OutputArchive(Writer& writer)
        : cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision>(this), writer_(writer) {}
    void saveBinary(const void* data, std::size_t size) { writer_.write(data, size); }
    template <class T>
    void save_values(const T* values, std::size_t count) { write_values(writer_, values, count); }

private:
    Writer& writer_;
};

class InputArchive : public cereal::InputArchive<InputArchive, cereal::AllowEmptyClassElision> {
public:
    /// `decoded` names the type being decoded, in errors.
    explicit InputArchive(Reader& reader, std::string_view decoded = {})
        : cereal::InputArchive<InputArchive, cereal::AllowEmptyClassElision>(this), reader_(reader), decoded_(decoded) {}
    void loadBinary(void* data, std::size_t size) { reader_.read(data, size); }
    [[nodiscard]] std::size_t remaining() const noexcept { return reader_.remaining().size(); }

    /// What the next count read counts: cereal reads a container's count first thing in its load,
    /// right after the prologue below names the container, which is how the count's check learns
    /// the size of an element.
    struct Counted {
        std::string_view container;      // empty: not a standard container's count
        std::uint64_t element_bytes = 1;  // the fewest bytes one element takes
    };
    void expect_count(Counted next) noexcept { counted_ = next; }
    /// The expectation for this count, which it uses up.
    Counted take_counted() noexcept { return std::exchange(counted_, Counted{}); }
    [[nodiscard]] std::string_view decoded() const noexcept { return decoded_; }

private:
    Reader& reader_;
    std::string_view decoded_;
    Counted counted_;
};

/// cereal calls this before it loads each value (and before its load reads the value's count).
template <class T>
void prologue(InputArchive& archive, const T&) noexcept {
    if constexpr (detail::is_counted_v<T>)
        archive.expect_count({ipc::detail::type_name<T>(), detail::counted_element_bytes<T>()});
    else
        archive.expect_count({});  // a count that another type's load reads: at least a byte each
}
/// A count itself leaves the expectation for its own check.
template <class T>
void prologue(InputArchive&, const cereal::SizeTag<T>&) noexcept {}

template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_SAVE_FUNCTION_NAME(OutputArchive& archive, const T& value) {
    archive.save_values(std::addressof(value), 1);  // a long double has padding
}
template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_LOAD_FUNCTION_NAME(InputArchive& archive, T& value) {
    archive.loadBinary(std::addressof(value), sizeof value);
}
/// A bool is one byte, 0 or 1: any other byte is no bool (reading it as one is undefined behaviour).
[[noreturn]] void throw_invalid_bool(std::string_view type, unsigned byte);
inline void CEREAL_LOAD_FUNCTION_NAME(InputArchive& archive, bool& value) {
    unsigned char byte = 0;
    archive.loadBinary(&byte, 1);
    if (byte > 1) throw_invalid_bool("bool", byte);
    value = byte == 1;
}
template <class Archive, class T>
CEREAL_ARCHIVE_RESTRICT(InputArchive, OutputArchive)
CEREAL_SERIALIZE_FUNCTION_NAME(Archive& archive, cereal::NameValuePair<T>& pair) {
    archive(pair.value);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(OutputArchive& archive, const cereal::SizeTag<T>& tag) {
    archive(tag.size);
}
/// Every element takes at least its type's fewest bytes, so a count the bytes left cannot hold comes
/// from a corrupt message, and must fail before its container allocates for it (a vector of deques
/// would allocate far more than the message for each element it claims).
[[noreturn]] void throw_count_too_large(std::string_view decoded, std::string_view container, std::uint64_t count,
                                        std::uint64_t element_bytes, std::uint64_t remaining);
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(InputArchive& archive, cereal::SizeTag<T>& tag) {
    const auto counted = archive.take_counted();
    archive(tag.size);
    const auto count = static_cast<std::uint64_t>(tag.size);
    if (count > archive.remaining() / counted.element_bytes)
        throw_count_too_large(archive.decoded(), counted.container, count, counted.element_bytes, archive.remaining());
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(OutputArchive& archive, const cereal::BinaryData<T>& data) {
    using Element = std::remove_cv_t<std::remove_pointer_t<T>>;
    if constexpr (std::is_arithmetic_v<Element>)  // a vector of long double has padding
        archive.save_values(static_cast<const Element*>(data.data), static_cast<std::size_t>(data.size) / sizeof(Element));
    else
        archive.saveBinary(data.data, static_cast<std::size_t>(data.size));
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(InputArchive& archive, cereal::BinaryData<T>& data) {
    archive.loadBinary(data.data, static_cast<std::size_t>(data.size));
}

}  // namespace ipc::codec

CEREAL_REGISTER_ARCHIVE(ipc::codec::OutputArchive)
CEREAL_REGISTER_ARCHIVE(ipc::codec::InputArchive)
CEREAL_SETUP_ARCHIVE_TRAITS(ipc::codec::InputArchive, ipc::codec::OutputArchive)

namespace ipc::codec {

/// An ipc handle (queue, lock, shared memory, …) crosses a spawn by name: it saves what the
/// child needs to reopen the object, and its load reopens and checks it.
template <class T>
concept Handle = requires(const T& value, Writer& writer, Reader& reader) {
    value.ipc_save(writer);
    { T::ipc_load(reader) } -> std::same_as<T>;
};

template <class T>
concept CerealSerializable = !std::is_pointer_v<T> && !std::is_member_pointer_v<T> &&
                             cereal::traits::is_output_serializable<T, OutputArchive>::value &&
                             cereal::traits::is_input_serializable<T, InputArchive>::value &&
                             std::is_default_constructible_v<T>;

namespace detail {
/// Standard types that are trivially copyable but only point at data owned elsewhere.
template <class T>
inline constexpr bool is_view_v = false;
template <class C, class Traits>
inline constexpr bool is_view_v<std::basic_string_view<C, Traits>> = true;
template <class E, std::size_t N>
inline constexpr bool is_view_v<std::span<E, N>> = true;
template <class T>
inline constexpr bool is_view_v<std::reference_wrapper<T>> = true;
/// A std::array of raw elements (specialized below Raw).
template <class T>
inline constexpr bool is_raw_std_array_v = false;
}  // namespace detail

/// Raw bytes are right only for self-contained values: an address means nothing in another process.
/// A class with its own cereal functions is encoded by them even when it is trivially copyable;
/// a std::array of raw elements is one copy all the same (cereal would go element by element).
/// A user struct that holds a pointer must say so with cereal functions: C++ cannot tell.
template <class T>
concept Raw = std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T> &&
              !std::is_array_v<T> && !detail::is_view_v<T> &&
              (detail::is_raw_std_array_v<T> || !(std::is_class_v<T> && CerealSerializable<T>));

namespace detail {
template <class E, std::size_t N>
inline constexpr bool is_raw_std_array_v<std::array<E, N>> = Raw<E>;
}  // namespace detail

namespace detail {
template <class T>
inline constexpr bool is_vector_v = false;
template <class U, class A>
inline constexpr bool is_vector_v<std::vector<U, A>> = true;
}  // namespace detail

namespace detail {
/// Raw types whose every byte is a bool: bool and (nested) std::arrays of it.
template <class T>
inline constexpr bool all_bools_v = std::is_same_v<std::remove_cv_t<T>, bool>;
template <class E, std::size_t N>
inline constexpr bool all_bools_v<std::array<E, N>> = all_bools_v<E>;
}  // namespace detail

/// The first byte of the `size` bytes at `bytes` that cannot be a T's, when every byte of a T is a
/// bool (0 or 1); -1 when all can be. (A bool inside a plain struct is not checked: C++ cannot
/// tell which bytes of a struct are bools.)
template <class T>
int invalid_bool_byte(const std::byte* bytes, std::size_t size) noexcept {
    if constexpr (detail::all_bools_v<T>) {
        for (std::size_t i = 0; i < size; ++i)
            if (std::to_integer<unsigned>(bytes[i]) > 1) return std::to_integer<int>(bytes[i]);
    }
    return -1;
}

/// The types that may alias any bytes (char, unsigned char, std::byte): a vector of them is built
/// straight from a message.
template <class T>
inline constexpr bool is_byte_like_v =
    std::is_same_v<T, std::byte> || std::is_same_v<T, char> || std::is_same_v<T, unsigned char>;

/// A vector of raw elements (bytes, numbers, plain structs): its size, then one copy of its
/// elements, instead of cereal's element-by-element path for non-arithmetic types such as std::byte.
template <class T>
concept RawVector = detail::is_vector_v<T> && Raw<typename T::value_type> && !std::is_same_v<typename T::value_type, bool>;

namespace detail {
/// A tuple or pair that holds an ipc handle (arguments for a Pool call, say): encoded element by
/// element, since cereal knows nothing of handles and would also need each default-constructible.
template <class T>
struct HandleTupleTraits : std::false_type {};
template <class... Ts>
struct HandleTupleTraits<std::tuple<Ts...>>
    : std::bool_constant<(Handle<Ts> || ...) && ((Handle<Ts> || Raw<Ts> || RawVector<Ts> || CerealSerializable<Ts>) && ...)> {};
template <class A, class B>
struct HandleTupleTraits<std::pair<A, B>> : HandleTupleTraits<std::tuple<A, B>> {};
}  // namespace detail

template <class T>
concept HandleTuple = detail::HandleTupleTraits<T>::value;

template <class T>
concept Encodable = Handle<T> || HandleTuple<T> || Raw<T> || RawVector<T> || CerealSerializable<T>;

template <class T>
T load(Reader& reader);

/// Appends the encoding of `value` (no type tag) to `writer`.
template <class T>
void save(Writer& writer, const T& value) {
    static_assert(Encodable<T>,
                  "ipc::codec cannot encode this type: make it trivially copyable (and pointer-free), "
                  "or give it cereal serialize()/save()/load() functions");
    if constexpr (Handle<T>) {
        value.ipc_save(writer);
    } else if constexpr (HandleTuple<T>) {
        std::apply([&](const auto&... element) { (save(writer, element), ...); }, value);
    } else if constexpr (Raw<T>) {
        write_values(writer, std::addressof(value), 1);
    } else if constexpr (RawVector<T>) {
        const std::uint64_t size = value.size();
        writer.write(&size, sizeof size);
        write_values(writer, value.data(), value.size());
    } else if constexpr (std::is_same_v<T, std::string>) {
        writer.write_string(value);  // cereal's bytes for a string, without building an archive
    } else {
        try {
            OutputArchive archive(writer);
            archive(value);
        } catch (const cereal::Exception& e) {
            throw CodecError("encode " + std::string(ipc::detail::type_name<T>()) + ": " + e.what());
        }
    }
}

/// A HandleTuple's elements, read in order (a braced list is evaluated left to right).
template <class T, std::size_t... I>
T load_elements(Reader& reader, std::index_sequence<I...>) {
    return T{load<std::tuple_element_t<I, T>>(reader)...};
}

/// Reads one `T` written by save<T>.
template <class T>
T load(Reader& reader) {
    static_assert(Encodable<T>,
                  "ipc::codec cannot decode this type: make it trivially copyable (and pointer-free), "
                  "or give it cereal serialize()/save()/load() functions");
    if constexpr (Handle<T>) {
        return T::ipc_load(reader);
    } else if constexpr (HandleTuple<T>) {
        return load_elements<T>(reader, std::make_index_sequence<std::tuple_size_v<T>>{});
    } else if constexpr (std::is_same_v<T, std::string>) {
        return reader.read_string();
    } else if constexpr (RawVector<T>) {
        using Element = typename T::value_type;
        std::uint64_t size = 0;
        reader.read(&size, sizeof size);
        // Check before allocating: a corrupt size must not ask for terabytes.
        if (size > reader.remaining().size() / sizeof(Element))
            throw_count_too_large(ipc::detail::type_name<T>(), ipc::detail::type_name<T>(), size, sizeof(Element),
                                  reader.remaining().size());
        if constexpr (is_byte_like_v<Element>) {
            const auto bytes = reader.take(static_cast<std::size_t>(size));  // one copy, no zeroing first
            const auto* first = reinterpret_cast<const Element*>(bytes.data());
            return T(first, first + bytes.size());
        } else {
            const auto bytes = reader.take(static_cast<std::size_t>(size) * sizeof(Element));
            if (const int bad = invalid_bool_byte<Element>(bytes.data(), bytes.size()); bad >= 0)
                throw_invalid_bool(ipc::detail::type_name<T>(), static_cast<unsigned>(bad));
            T value(static_cast<std::size_t>(size));
            if (!bytes.empty()) std::memcpy(value.data(), bytes.data(), bytes.size());
            return value;
        }
    } else if constexpr (Raw<T>) {
        alignas(T) std::byte storage[sizeof(T)];
        reader.read(storage, sizeof(T));
        if (const int bad = invalid_bool_byte<T>(storage, sizeof(T)); bad >= 0)
            throw_invalid_bool(ipc::detail::type_name<T>(), static_cast<unsigned>(bad));
        return std::bit_cast<T>(storage);
    } else {
        T value{};
        try {
            InputArchive archive(reader, ipc::detail::type_name<T>());
            archive(value);
        } catch (const CodecError&) {
            throw;
        } catch (const std::exception& e) {
            // cereal::Exception, and std::length_error / std::bad_alloc from a corrupt length field.
            throw CodecError("decode " + std::string(ipc::detail::type_name<T>()) + ": " + e.what());
        }
        return value;
    }
}

/// Remembers the name behind a tag so that a type mismatch can name the type that was sent.
void remember_type_name(std::uint64_t tag, std::string_view name);
/// The name remembered for `tag`, or an empty string when this program never encoded that type.
std::string type_name_of(std::uint64_t tag);

template <class T>
std::uint64_t registered_tag() {
    static const std::uint64_t tag = [] {
        remember_type_name(ipc::detail::type_tag<T>, ipc::detail::type_name<T>());
        return ipc::detail::type_tag<T>;
    }();
    return tag;
}

[[noreturn]] void throw_type_mismatch(std::string_view expected, std::uint64_t got);
[[noreturn]] void throw_trailing_bytes(std::string_view type, std::size_t count);

/// A value whose message is its own bytes after the tag (and an element count, for a vector): a
/// channel can copy it straight into place, without encoding it into a buffer first.
template <class T>
concept Flat = !Handle<T> && (Raw<T> || RawVector<T>);

/// The message encode<T> makes of a Flat value, written straight into place by a channel (see
/// detail::RingMessage): the tag, the element count for a vector, then the value's own bytes.
template <Flat T>
class FlatMessage {
public:
    explicit FlatMessage(const T& value) : tag_(registered_tag<T>()) {  // the first tag of a type registers its name
        if constexpr (RawVector<T>) {
            count_ = value.size();
            bytes_ = std::as_bytes(std::span(value.data(), value.size()));
        } else {
            bytes_ = std::as_bytes(std::span(std::addressof(value), 1));
        }
        if constexpr (!ipc::detail::padding_free_v<Element>) {
            if (ipc::detail::has_padding<Element>()) {  // sent from a copy whose padding is zero
                cleared_.assign(bytes_.begin(), bytes_.end());
                ipc::detail::clear_padding<Element>(cleared_.data(), cleared_.size() / sizeof(Element));
                bytes_ = cleared_;
            }
        }
    }
    [[nodiscard]] std::uint64_t size() const noexcept { return header_size + bytes_.size(); }
    /// The message as the parts to copy one after the other (they point into this and the value).
    [[nodiscard]] std::array<std::span<const std::byte>, 3> parts() const noexcept {
        return {std::as_bytes(std::span(&tag_, 1)), std::as_bytes(std::span(&count_, RawVector<T> ? 1 : 0)), bytes_};
    }
    void write_to(std::byte* target) const noexcept {
        std::memcpy(target, &tag_, sizeof tag_);
        if constexpr (RawVector<T>) std::memcpy(target + sizeof tag_, &count_, sizeof count_);
        if (!bytes_.empty()) std::memcpy(target + header_size, bytes_.data(), bytes_.size());
    }

private:
    static constexpr std::size_t header_size = RawVector<T> ? 2 * sizeof(std::uint64_t) : sizeof(std::uint64_t);
    using Element = typename std::conditional_t<RawVector<T>, T, std::array<T, 1>>::value_type;
    std::uint64_t tag_;
    std::uint64_t count_ = 0;
    std::span<const std::byte> bytes_;
    struct NoCopy {};
    // A copy with zeroed padding, for a type that may have padding; nothing for the others.
    [[no_unique_address]] std::conditional_t<ipc::detail::padding_free_v<Element>, NoCopy, std::vector<std::byte>> cleared_;
};

/// A Flat T that a receive decodes straight into the value it returns (named return value): one
/// object, never moved. Moving a received vector out of a std::optional loaded its two pointers as
/// one 16-byte load of two 8-byte stores, a failed store-to-load forward that waited for every
/// store of the receive to drain.
template <class T>
concept DecodableInPlace = Flat<T> && std::default_initializable<T> && std::is_move_assignable_v<T>;

/// Decodes a Flat T into `out`, a default-initialized T, from a message of `source.size` bytes that
/// `source.copy(offset, target, bytes)` reads, and `source.contiguous()` shows in place unless it
/// wraps (a record in a ring, say). False, with `out` untouched, when the message is not exactly a
/// T (decode() then says what is wrong). A vector of bytes is built straight from the message: one
/// allocation, one copy.
template <DecodableInPlace T, class Source>
bool decode_flat(const Source& source, T& out) {
    const auto size = static_cast<std::size_t>(source.size);
    const std::byte* in_place = source.contiguous();  // then small reads are plain loads, not calls
    auto copy = [&](std::size_t offset, void* target, std::size_t bytes) {
        if (bytes == 0) return;  // an empty vector's data() may be null
        if (in_place != nullptr) std::memcpy(target, in_place + offset, bytes);
        else source.copy(offset, target, bytes);
    };
    std::uint64_t tag = 0;
    if (size < sizeof tag) return false;
    copy(0, &tag, sizeof tag);
    if (tag != registered_tag<T>()) return false;
    if constexpr (RawVector<T>) {
        using Element = typename T::value_type;
        constexpr std::size_t header = 2 * sizeof tag;
        std::uint64_t count = 0;
        if (size < header) return false;
        copy(sizeof tag, &count, sizeof count);
        if (count > (size - header) / sizeof(Element) || size != header + count * sizeof(Element)) return false;
        if constexpr (is_byte_like_v<Element>) {
            if (in_place != nullptr) {
                const auto* first = reinterpret_cast<const Element*>(in_place + header);  // may alias the bytes
                out.assign(first, first + count);
                return true;
            }
        }
        out.resize(static_cast<std::size_t>(count));
        copy(header, out.data(), static_cast<std::size_t>(count) * sizeof(Element));
        if constexpr (detail::all_bools_v<Element>) {
            if (invalid_bool_byte<Element>(reinterpret_cast<const std::byte*>(out.data()), count * sizeof(Element)) >= 0) {
                out.clear();  // the general way names the byte
                return false;
            }
        }
        return true;
    } else {
        if (size != sizeof tag + sizeof(T)) return false;
        if constexpr (detail::all_bools_v<T>) {
            alignas(T) std::byte bytes[sizeof(T)];
            copy(sizeof tag, bytes, sizeof(T));
            if (invalid_bool_byte<T>(bytes, sizeof(T)) >= 0) return false;  // the general way names the byte
            std::memcpy(std::addressof(out), bytes, sizeof(T));
        } else {
            copy(sizeof tag, std::addressof(out), sizeof(T));  // T is trivially copyable: its bytes are its value
        }
        return true;
    }
}

}  // namespace ipc::codec

namespace ipc {

using codec::Encodable;

/// Appends a tagged message holding `value` to `out`.
template <class T>
void encode_into(std::vector<std::byte>& out, const T& value) {
    codec::Writer writer(out);
    const std::uint64_t tag = codec::registered_tag<T>();
    writer.write(&tag, sizeof tag);
    codec::save(writer, value);
}

/// A tagged message holding `value`.
template <class T>
[[nodiscard]] std::vector<std::byte> encode(const T& value) {
    std::vector<std::byte> out;
    if constexpr (codec::Raw<T>) out.reserve(sizeof(std::uint64_t) + sizeof(T));
    encode_into(out, value);
    return out;
}

/// The value in a message made by encode<T>; a message of another type is a CodecError naming both.
template <class T>
[[nodiscard]] T decode(std::span<const std::byte> message) {
    codec::Reader reader(message);
    std::uint64_t tag = 0;
    reader.read(&tag, sizeof tag);
    if (tag != codec::registered_tag<T>()) codec::throw_type_mismatch(detail::type_name<T>(), tag);
    T value = codec::load<T>(reader);
    if (!reader.remaining().empty()) codec::throw_trailing_bytes(detail::type_name<T>(), reader.remaining().size());
    return value;
}

}  // namespace ipc
