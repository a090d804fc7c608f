// tests/fuzz/write_seeds.cpp — writes the seed corpus of every fuzz target into <folder>/<target>/:
// valid messages of each type, real segment headers, rings left by real sends, and handshake
// transcripts. Run it when an input format changes: build/tests/fuzz/fuzz_write_seeds tests/fuzz/corpus
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "fuzz_ring_input.hpp"
#include "fuzz_support.hpp"
#include "fuzz_types.hpp"
#include "ipc/codec.hpp"
#include "ipc/connection.hpp"
#include "ipc/detail/ring.hpp"
#include "ipc/queues.hpp"
#include "ipc/shared_memory.hpp"
#include "ipc/sharedctypes.hpp"
#include "managers/protocol.hpp"

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::byte>;

void write_file(const fs::path& path, std::span<const std::byte> bytes) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

Bytes with_steer(std::uint8_t steer, std::span<const std::byte> rest) {
    Bytes input{std::byte{steer}};
    input.insert(input.end(), rest.begin(), rest.end());
    return input;
}

// fuzz_codec: each type's sample, once with the tag left for the target to put in front, once whole.
using namespace std::string_literals;
const auto samples = std::make_tuple(
    std::int8_t{-5}, std::uint16_t{513}, std::int32_t{-70000}, std::uint64_t{1} << 40, 2.5, true, ipc::fuzz::Shade::dark,
    "hello\0world"s, std::vector<int>{1, -2, 3}, std::vector<bool>{true, false, true}, std::vector<char>{'a', 'b'},
    std::vector<std::byte>{std::byte{0}, std::byte{255}}, std::optional<int>(7), std::optional<std::string>("set"),
    std::map<std::string, int>{{"a", 1}, {"bb", 2}}, std::unordered_map<int, std::string>{{1, "one"}},
    std::set<std::int64_t>{-1, 5, 9}, std::make_tuple(1, "two"s, 3.0), std::make_pair("key"s, std::vector<int>{4, 5}),
    std::deque<std::int16_t>{1, 2, 3}, std::vector<std::deque<std::int16_t>>{{1}, {}, {2, 3}},
    std::array<std::byte, 64>{std::byte{1}, std::byte{2}}, std::array<bool, 4>{true, false, false, true},
    ipc::fuzz::RawRecord{1, 2, {'x', 'y'}, 0.5}, std::vector<ipc::fuzz::RawRecord>{{3, 4, {'a', 'b'}, 1.5}},
    std::vector<std::array<bool, 3>>{{true, false, true}}, std::vector<std::string>{"a", "", "ccc"},
    std::vector<std::vector<std::string>>{{"x"}, {}, {"y", "z"}}, std::list<std::optional<std::string>>{"p", std::nullopt},
    std::variant<int, std::string, std::vector<double>>(std::vector<double>{1.0, 2.0}),
    std::map<int, std::vector<std::pair<std::string, int>>>{{1, {{"k", 2}}}}, std::chrono::milliseconds(1500));
static_assert(std::is_same_v<std::remove_cvref_t<decltype(samples)>, ipc::fuzz::CodecTypes>);

void write_codec_seeds(const fs::path& folder) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (([&] {
             const Bytes message = ipc::encode(std::get<I>(samples));
             const auto body = std::span(message).subspan(sizeof(std::uint64_t));
             write_file(folder / ("type-" + std::to_string(I)), with_steer(static_cast<std::uint8_t>(I), body));
             if (I % 4 == 0)  // a few whole messages, tag included
                 write_file(folder / ("tagged-" + std::to_string(I)), with_steer(static_cast<std::uint8_t>(0x80 | I), message));
         }()),
         ...);
    }(std::make_index_sequence<std::tuple_size_v<ipc::fuzz::CodecTypes>>());
}

// fuzz_segment_header: the files of real objects (steer 0: nothing forced), read from IPC_SHM_DIR.
Bytes object_file(const std::string& name) {
    std::ifstream in(ipc::fuzz::use_private_shm_dir() + "/" + name, std::ios::binary);
    Bytes bytes;
    for (char c; in.get(c);) bytes.push_back(static_cast<std::byte>(c));
    return bytes;
}

void write_segment_seeds(const fs::path& folder) {
    auto write_object = [&](const std::string& seed, const std::string& name) {
        write_file(folder / seed, with_steer(0, object_file(name)));
    };
    {
        ipc::SharedMemory block("fuzz-seed-block", true, 100);
        write_object("shared-memory", "fuzz-seed-block");
        block.unlink();
    }
    for (const auto& entry : fs::directory_iterator(ipc::fuzz::use_private_shm_dir())) fs::remove(entry.path());
    {
        const ipc::Value<int> value(5);
        const ipc::Queue<std::string> queue(0, 4096);
        const auto [a, b] = ipc::Pipe(true, 4096);
        int index = 0;
        for (const auto& entry : fs::directory_iterator(ipc::fuzz::use_private_shm_dir()))
            write_object("object-" + std::to_string(index++), entry.path().filename().string());
    }
}

// fuzz_ring: rings as real sends and receives left them.
void write_ring_seed(const fs::path& path, const ipc::detail::RingState& state, std::uint32_t max_size,
                     std::uint16_t message_size, std::uint8_t flags) {
    ipc::fuzz::RingInput in{};
    const std::uint64_t head = state.head.load();
    in.base = head;
    in.tail_delta = static_cast<std::int32_t>(state.tail.load() - head);
    in.seen_tail_delta = static_cast<std::int32_t>(state.receiver_seen_tail - head);
    in.journal_tail_delta = static_cast<std::int32_t>(state.journal_tail.load() - state.tail.load());
    in.journal_head_delta = static_cast<std::int32_t>(state.journal_head.load() - head);
    in.sender_seen_head_delta = static_cast<std::int32_t>(state.sender_seen_head - head);
    in.max_size = max_size;
    in.message_size = message_size;
    in.received = static_cast<std::uint8_t>(state.received.load());
    in.sent_delta = static_cast<std::uint8_t>(state.sent.load() - state.received.load());
    in.max_messages = static_cast<std::uint8_t>(state.max_messages);
    in.flags = flags;
    Bytes input(sizeof in);
    std::memcpy(input.data(), &in, sizeof in);
    auto* state_data = const_cast<ipc::detail::RingState&>(state).data();
    input.insert(input.end(), state_data, state_data + ipc::fuzz::fuzz_ring_capacity);
    write_file(path, input);
}

void write_ring_seeds(const fs::path& folder) {
    using namespace ipc::detail;
    ipc::fuzz::MemoryRing memory(ipc::fuzz::fuzz_ring_capacity);
    const auto now = [] { return Deadline::after(std::chrono::nanoseconds(0)); };
    auto send = [&](const Ring& ring, std::size_t size) {
        const Bytes message(size, std::byte{0x5a});
        ring_send(ring, {std::span<const std::byte>(message), {}, {}}, now(), nullptr, RingWait::immediate);
    };
    int index = 0;
    auto seed = [&](const Ring& ring, std::uint32_t max_size, std::uint16_t message_size, std::uint8_t flags) {
        write_ring_seed(folder / ("ring-" + std::to_string(index++)), *std::launder(&memory.state()), max_size, message_size, flags);
        ring_let_go(ring);
    };
    {  // empty
        const Ring ring(memory.reset(), "seed");
        seed(ring, 0xffffffffu, 10, 0);
    }
    {  // three small messages waiting, one of them across the ring's end
        const Ring ring(memory.reset(), "seed");
        Bytes out;
        send(ring, 1500), send(ring, 1500);
        ring_receive(ring, out, now(), nullptr, ~std::uint64_t{0}, RingWait::immediate);
        send(ring, 1000), send(ring, 1200);
        seed(ring, 0xffffffffu, 100, 0);
    }
    {  // the first chunk of a streamed message, its sender still streaming
        const Ring ring(memory.reset(), "seed");
        send(ring, 5000);  // streams: the first chunk fits, the rest times out (an abort record follows)
        seed(ring, 0xffffffffu, 3000, ipc::fuzz::RingInput::streaming);
    }
    {  // a message larger than the receiver allows, and a Queue's maxsize reached
        ipc::detail::RingState& state = memory.reset();
        state.max_messages = 2;
        const Ring ring(state, "seed");
        send(ring, 300), send(ring, 10);
        seed(ring, 100, 20, ipc::fuzz::RingInput::pollers);
    }
}

// fuzz_handshake: what each side says, frame by frame (see net/handshake.cpp).
enum Type : std::uint8_t { hello = 1, ready, no_key, want_auth, digest, verdict, challenge, connection, opened, failed };

void frame(Bytes& out, Type type, std::span<const std::byte> payload = {}) {
    const auto length = static_cast<std::uint32_t>(1 + payload.size());
    const auto at = out.size();
    out.resize(at + sizeof length);
    std::memcpy(out.data() + at, &length, sizeof length);
    out.push_back(std::byte{type});
    out.insert(out.end(), payload.begin(), payload.end());
}

Bytes hello_payload(bool authenticates) {
    Bytes payload(8 + 4 + 1);
    std::memcpy(payload.data(), "ipc-lstn", 8);
    const std::uint32_t version = 1;
    std::memcpy(payload.data() + 8, &version, sizeof version);
    payload[12] = std::byte{authenticates ? std::uint8_t{1} : std::uint8_t{0}};
    if (authenticates) payload.resize(payload.size() + 32, std::byte{0x11});
    return payload;
}

void write_handshake_seeds(const fs::path& folder) {
    const Bytes digest_bytes(32, std::byte{0x22}), yes{std::byte{1}}, no{std::byte{0}};
    // The Listener's side reads a client: ready then opened; a digest, a challenge and a verdict.
    Bytes plain;
    frame(plain, ready), frame(plain, opened);
    write_file(folder / "listener-ready", with_steer(0, plain));
    Bytes authenticated;
    frame(authenticated, digest, digest_bytes), frame(authenticated, challenge, digest_bytes), frame(authenticated, verdict, yes);
    write_file(folder / "listener-digest", with_steer(2, authenticated));
    Bytes refused;
    frame(refused, ready);
    const std::string reason = "could not open it";
    frame(refused, failed, std::as_bytes(std::span(reason)));
    write_file(folder / "listener-failed", with_steer(0, refused));
    // The Client's side reads a Listener: hello, then a connection: the Pipe's name (fuzz_handshake
    // links a real one there), the end, and four wake descriptors, each a flag and an index.
    auto connection_payload = [](bool with_descriptors) {
        Bytes end;
        ipc::codec::Writer writer(end);
        writer.write_string("fuzz-pipe");
        ipc::codec::save(writer, 1);
        for (std::uint32_t index = 0; index < 4; ++index) {
            ipc::codec::save(writer, with_descriptors);
            if (with_descriptors) writer.write(&index, sizeof index);
        }
        return end;
    };
    Bytes greeting;
    frame(greeting, hello, hello_payload(false));
    Bytes plain_greeting = greeting;
    frame(plain_greeting, connection, connection_payload(false));
    write_file(folder / "client-plain", with_steer(1, plain_greeting));
    frame(greeting, connection, connection_payload(true));
    write_file(folder / "client-descriptors", with_steer(1 | 4, greeting));
    Bytes challenged;
    frame(challenged, hello, hello_payload(true)), frame(challenged, verdict, yes), frame(challenged, digest, digest_bytes);
    write_file(folder / "client-authkey", with_steer(1 | 2, challenged));
    Bytes rejected;
    frame(rejected, hello, hello_payload(true)), frame(rejected, verdict, no);
    write_file(folder / "client-rejected", with_steer(1 | 2, rejected));
}

}  // namespace

// fuzz_manager_request: requests to a server serving a Counter (object 1 is the first one made),
// by method name, and each kind of reply.
void write_manager_seeds(const fs::path& folder) {
    using ipc::detail::Request;
    using ipc::detail::RequestKind;
    const auto request = [&](const std::string& file, RequestKind kind, std::uint64_t id, const std::string& name,
                             const Bytes& arguments) {
        write_file(folder / file, with_steer(0, Request{kind, id, 0, name, arguments}.bytes()));
    };
    request("create", RequestKind::create, 0, "Counter", ipc::encode(std::tuple<int>(5)));
    request("call-add", RequestKind::call, 1, "add", ipc::encode(std::tuple<int>(2)));
    request("call-describe", RequestKind::call, 1, "describe", ipc::encode(std::tuple<std::string>("value ")));
    request("call-fail", RequestKind::call, 1, "fail", ipc::encode(std::tuple<>()));
    request("call-copy", RequestKind::call, 1, "copy", ipc::encode(std::tuple<>()));
    request("ping", RequestKind::ping, 0, "", {});
    write_file(folder / "reply-value", with_steer(128, ipc::detail::value_reply(ipc::encode(42))));
    write_file(folder / "reply-object", with_steer(128, ipc::detail::object_reply(3, "Counter", 77)));
    write_file(folder / "reply-error", with_steer(128, ipc::detail::error_reply("std::out_of_range", "far")));
    write_file(folder / "reply-ipc-error", with_steer(128, ipc::detail::error_reply("ipc::KeyError", "no such key")));
}

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CORPUS_FOLDER (tests/fuzz/corpus)\n", argv[0]);
        return 2;
    }
    const fs::path folder = argv[1];
    ipc::fuzz::use_private_shm_dir();
    write_codec_seeds(folder / "fuzz_codec");
    write_segment_seeds(folder / "fuzz_segment_header");
    write_ring_seeds(folder / "fuzz_ring");
    write_handshake_seeds(folder / "fuzz_handshake");
    write_manager_seeds(folder / "fuzz_manager_request");
    return 0;
}
