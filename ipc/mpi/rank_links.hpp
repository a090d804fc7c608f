// mpi/rank_links.hpp — the links of an mpi::Pool's engine to its worker ranks. Private.
#pragma once

#include <memory>
#include <vector>

#include "pool/worker_links.hpp"

namespace ipc::mpi::detail {

/// Worker i is rank i + 1 of ipc's communicator; the job must have been started (world().active).
std::unique_ptr<ipc::detail::WorkerLinks> make_rank_links(const ipc::detail::PoolSettings& settings,
                                                          const std::vector<std::byte>& initializer,
                                                          const ipc::detail::InboxHandle& inbox);

}  // namespace ipc::mpi::detail
