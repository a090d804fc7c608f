// pool/pool.cpp — ipc::Pool's untyped parts: checking its options and the process that may use it.
#include "ipc/pool.hpp"

#include <string>

#include "pool/worker_links.hpp"

namespace ipc {

Pool::Pool(PoolOptions options, std::vector<std::byte> initializer) {
    if (options.maxtasksperchild && *options.maxtasksperchild == 0)
        throw ValueError("Pool: maxtasksperchild must be at least 1 (leave it empty for no limit)");
    const detail::PoolSettings settings{options.processes.value_or(process_cpu_count()), options.maxtasksperchild.value_or(0),
                                        options.start_method.value_or(get_start_method())};
    core_ = std::make_unique<detail::PoolCore>(settings, std::move(initializer), detail::make_process_links);
}

Pool::Pool(WithCore, std::unique_ptr<detail::PoolCore> core) : core_(std::move(core)) {}

detail::PoolCore& Pool::core(const char* operation) const {
    if (!core_) throw ValueError(std::string("Pool.") + operation + "(): this Pool was moved from");
    // Before anything else: a forked child's copy must fail before it allocates or locks.
    core_->check_owner(operation);
    return *core_;
}

}  // namespace ipc
