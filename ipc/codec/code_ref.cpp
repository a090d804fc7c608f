// codec/code_ref.cpp — functions cross a spawn as (module, offset, first bytes): found here, and
// found again in the child, where the same executable is loaded at another address.
#include <link.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "ipc/detail/code_ref.hpp"
#include "ipc/error.hpp"

namespace ipc::detail {

namespace {

struct CodeSegment {
    std::string module;
    std::uintptr_t base = 0;
    std::uintptr_t end = 0;  // end of the executable segment holding the address
    bool found = false;
};

/// The loaded module and executable segment that hold `address`; `want_module` restricts the search.
CodeSegment find_code_segment(std::uintptr_t address, const std::string* want_module) {
    struct Query {
        std::uintptr_t address;
        const std::string* want_module;
        CodeSegment result;
    } query{address, want_module, {}};
    ::dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) -> int {
            auto& q = *static_cast<Query*>(data);
            const char* name = info->dlpi_name ? info->dlpi_name : "";
            if (q.want_module && *q.want_module != name) return 0;
            for (int i = 0; i < info->dlpi_phnum; ++i) {
                const auto& header = info->dlpi_phdr[i];
                if (header.p_type != PT_LOAD || !(header.p_flags & PF_X)) continue;
                std::uintptr_t start = info->dlpi_addr + header.p_vaddr;
                std::uintptr_t end = start + header.p_memsz;
                if (q.address >= start && q.address < end) {
                    q.result = {name, info->dlpi_addr, end, true};
                    return 1;
                }
            }
            // The main program is the first module with an empty name; stop there when it was asked for.
            return q.want_module ? 1 : 0;
        },
        &query);
    return query.result;
}

std::array<std::uint8_t, 16> fingerprint_at(std::uintptr_t address, std::uintptr_t segment_end) {
    std::array<std::uint8_t, 16> bytes{};
    std::memcpy(bytes.data(), reinterpret_cast<const void*>(address),
                std::min<std::uintptr_t>(bytes.size(), segment_end - address));
    return bytes;
}

std::string hex(std::uintptr_t value) {
    char text[32];
    std::snprintf(text, sizeof text, "0x%zx", static_cast<std::size_t>(value));
    return text;
}

std::string module_label(const std::string& module) { return module.empty() ? "the main program" : "'" + module + "'"; }

}  // namespace

CodeRef locate_code(const void* address) {
    const auto where = reinterpret_cast<std::uintptr_t>(address);
    CodeSegment segment = find_code_segment(where, nullptr);
    if (!segment.found)
        throw ProcessError("spawn: the code at " + hex(where) + " is in no loaded module, so a new program cannot find it");
    return {segment.module, where - segment.base, fingerprint_at(where, segment.end)};
}

const void* resolve_code(const CodeRef& code) {
    // Find the module's load address first, then check that the offset lands in its code.
    struct Query {
        const std::string* module;
        std::uintptr_t base = 0;
        bool found = false;
    } query{&code.module};
    ::dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) -> int {
            auto& q = *static_cast<Query*>(data);
            if (*q.module != (info->dlpi_name ? info->dlpi_name : "")) return 0;
            q.base = info->dlpi_addr;
            q.found = true;
            return 1;
        },
        &query);
    if (!query.found)
        throw ProcessError("spawn: the target's module " + module_label(code.module) +
                           " is not loaded in the child (was it loaded with dlopen after start?)");
    const std::uintptr_t address = query.base + code.offset;
    CodeSegment segment = find_code_segment(address, &code.module);
    if (!segment.found || fingerprint_at(address, segment.end) != code.fingerprint)
        throw ProcessError("spawn: the code at offset " + hex(code.offset) + " of " + module_label(code.module) +
                           " differs between parent and child (was the executable replaced?)");
    return reinterpret_cast<const void*>(address);
}

}  // namespace ipc::detail
