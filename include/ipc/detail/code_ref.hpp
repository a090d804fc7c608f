// ipc/detail/code_ref.hpp — how a function crosses to a spawned child (a Process target, a Pool
// task, a Barrier action): by where its code lies in the same executable, not by a registry.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace ipc::detail {

/// Where a piece of code lives: the loaded module (empty for the main executable), the offset from
/// its load address, and its first bytes — checked in the child before anything is called.
struct CodeRef {
    std::string module;
    std::uint64_t offset = 0;
    std::array<std::uint8_t, 16> fingerprint{};

    template <class Archive>
    void serialize(Archive& archive) {
        archive(module, offset, fingerprint);
    }
};

/// The CodeRef of `address`; ProcessError when it lies in no loaded module's code.
CodeRef locate_code(const void* address);
/// The address of `code` in this process; ProcessError when the module is missing or the bytes differ.
const void* resolve_code(const CodeRef& code);

}  // namespace ipc::detail
