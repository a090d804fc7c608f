// ipc/ipc.hpp — everything in ipc with one include: Python's multiprocessing for C++ on shared memory.
#pragma once

#include "ipc/codec.hpp"
#include "ipc/connection.hpp"
#include "ipc/context.hpp"
#include "ipc/error.hpp"
#include "ipc/pool.hpp"
#include "ipc/listener.hpp"
#include "ipc/managers.hpp"
#include "ipc/process.hpp"
#include "ipc/queues.hpp"
#include "ipc/shared_memory.hpp"
#include "ipc/sharedctypes.hpp"
#include "ipc/synchronize.hpp"
