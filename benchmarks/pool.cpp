// benchmarks/pool.cpp — Pool.map of a trivial function over 1000 inputs, chunksize 1 and automatic:
// what a task costs when the work itself costs nothing. Built once include/ipc/pool.hpp exists.
#include <ipc/pool.hpp>

#include "peer.hpp"
#include "pool_cases.hpp"

namespace bench {
namespace {

const bool registered = [] {
    add("ipc.Pool.map/chunksize:1", map_trivial<ipc::Pool>, std::size_t{1});
    add("ipc.Pool.map/chunksize:auto", map_trivial<ipc::Pool>, std::size_t{0});
    return true;
}();

}  // namespace
}  // namespace bench
