// tests/fuzz/fuzz_manager_request.cpp — libFuzzer target for what a BaseManager's server reads from
// a client that knows the key (managers/server.*) and what a proxy reads back (managers/client.*).
// The first byte picks the side; the rest is a request for a server serving a Counter, or a
// reply. The server must answer every request (an error reply is fine) and go on; reading a reply
// may fail only with an exception the protocol can carry (ipc::Error and the std:: ones).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include "fuzz_support.hpp"
#include "ipc/error.hpp"
#include "ipc/managers.hpp"
#include "managers/client.hpp"
#include "managers/protocol.hpp"
#include "managers/server.hpp"

namespace {

/// What the server serves: constructor arguments, methods with arguments and results of several
/// kinds, one that throws, and one that hands out a new object.
class Counter {
public:
    explicit Counter(int start) : value_(start) {}
    int add(int amount) {  // wraps: the fuzzer adds anything
        value_ = static_cast<int>(static_cast<unsigned>(value_) + static_cast<unsigned>(amount));
        return value_;
    }
    [[nodiscard]] std::string describe(std::string prefix) const { return prefix + std::to_string(value_); }
    void fail() const { throw std::out_of_range("counter"); }
    [[nodiscard]] std::shared_ptr<Counter> copy() const { return std::make_shared<Counter>(value_); }

private:
    int value_;
};

ipc::detail::ServerState& server() {
    static const auto state = [] {
        ipc::detail::TypeTable types;
        auto& entry = types.types.emplace_back();
        entry.type_id = "Counter";
        entry.type_tag = ipc::codec::registered_tag<Counter>();
        entry.type_name = ipc::detail::type_name<Counter>();
        entry.factory = &ipc::detail::construct_object<Counter, int>;
        ipc::TypeRegistration<Counter>(entry)
            .method<&Counter::add>("add")
            .method<&Counter::describe>("describe")
            .method<&Counter::fail>("fail")
            .method<&Counter::copy>("copy");
        return ipc::detail::listen_for_clients({std::move(types), "@ipc-fuzz-manager-" + std::to_string(::getpid()), "key"});
    }();
    return *state;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    ipc::fuzz::use_private_shm_dir();
    (void)server();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const auto bytes = std::as_bytes(std::span(data + 1, size - 1));
    if (data[0] < 128) {
        const auto reply = ipc::detail::answer_request(server(), bytes);
        if (reply.empty()) std::abort();  // every request gets a reply
        return 0;
    }
    try {
        (void)ipc::detail::read_reply("fuzz", bytes);
    } catch (const ipc::Error&) {
    } catch (const std::exception&) {
        // A reply of an error of a std:: type is rethrown as that type.
    }
    return 0;
}
