// pool/remote_error.cpp — exceptions crossing from a Pool worker to the parent: described by type name and
// message, and recreated as the same type when it is a standard or ipc one.
#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <unordered_map>

#include "ipc/detail/pool_call.hpp"
#include "ipc/detail/pool_jobs.hpp"
#include "ipc/error.hpp"

namespace ipc::detail {

namespace {

std::string demangle(const char* mangled) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
    return status == 0 && name ? std::string(name.get()) : std::string(mangled);
}

using Factory = std::exception_ptr (*)(const std::string& message);

template <class E>
std::exception_ptr make(const std::string& message) {
    return std::make_exception_ptr(E(message));
}

const std::unordered_map<std::string, Factory>& known_types() {
    static const std::unordered_map<std::string, Factory> types = {
        {"std::runtime_error", &make<std::runtime_error>},
        {"std::logic_error", &make<std::logic_error>},
        {"std::invalid_argument", &make<std::invalid_argument>},
        {"std::domain_error", &make<std::domain_error>},
        {"std::length_error", &make<std::length_error>},
        {"std::out_of_range", &make<std::out_of_range>},
        {"std::range_error", &make<std::range_error>},
        {"std::overflow_error", &make<std::overflow_error>},
        {"std::underflow_error", &make<std::underflow_error>},
        {"std::bad_alloc", [](const std::string&) { return std::make_exception_ptr(std::bad_alloc()); }},
        {"ipc::Error", &make<Error>},
        {"ipc::ProcessError", &make<ProcessError>},
        {"ipc::TimeoutError", &make<TimeoutError>},
        {"ipc::CodecError", &make<CodecError>},
        {"ipc::ValueError", &make<ValueError>},
        {"ipc::IndexError", &make<IndexError>},
        {"ipc::BrokenBarrierError", &make<BrokenBarrierError>},
        {"ipc::EOFError", &make<EOFError>},
        {"ipc::Full", &make<Full>},
        {"ipc::Empty", &make<Empty>},
        {"ipc::ShutDown", &make<ShutDown>},
        {"ipc::NotOwnedError", &make<NotOwnedError>},
        {"ipc::CorruptSegmentError", &make<CorruptSegmentError>},
        {"ipc::KeyError", &make<KeyError>},
        {"ipc::AttributeError", &make<AttributeError>},
        {"ipc::MemoryError", &make<MemoryError>},
        {"ipc::ManagerError", &make<ManagerError>},
        {"ipc::AuthenticationError", &make<AuthenticationError>},
    };
    return types;
}

}  // namespace

RemoteFailure describe_current_exception(std::size_t index) {
    RemoteFailure failure{index, {}, {}};
    try {
        throw;
    } catch (const RemoteError& e) {
        // Already from another process (a pool used inside a worker): keep the original type.
        failure.type = e.type_name();
        failure.message = std::string(e.what()).substr(e.type_name().size() + 2);
    } catch (const std::exception& e) {
        failure.type = demangle(typeid(e).name());
        failure.message = e.what();
    } catch (...) {
        const auto* type = abi::__cxa_current_exception_type();
        failure.type = type ? demangle(type->name()) : "unknown exception";
        failure.message = "an exception not derived from std::exception";
    }
    return failure;
}

std::exception_ptr remote_exception(const RemoteFailure& failure) {
    const auto& types = known_types();
    if (auto found = types.find(failure.type); found != types.end()) return found->second(failure.message);
    return std::make_exception_ptr(RemoteError(failure.type, failure.message));
}

void report_callback_failure(const char* which) noexcept {
    try {
        throw;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ipc::Pool: a %s threw %s: %s (ignored)\n", which, demangle(typeid(e).name()).c_str(), e.what());
    } catch (...) {
        std::fprintf(stderr, "ipc::Pool: a %s threw a non-standard exception (ignored)\n", which);
    }
}

}  // namespace ipc::detail
