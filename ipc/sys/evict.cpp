// sys/evict.cpp — whether this CPU can evict lines cheaply (CLFLUSHOPT).
#include "ipc/detail/evict.hpp"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace ipc::detail {

namespace {
bool cpu_has_clflushopt() noexcept {
#if defined(__x86_64__)
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_max(0, nullptr) < 7) return false;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    return (ebx & (1u << 23)) != 0;  // CPUID.(EAX=7, ECX=0):EBX bit 23
#else
    return false;
#endif
}
}  // namespace

const bool lines_evictable = cpu_has_clflushopt();

}  // namespace ipc::detail
