// The test runner: ipc::init first, so that spawned children run their target instead of the tests.
#define CATCH_CONFIG_RUNNER
// Catch2's signal handlers would be inherited by forked children and turn a SIGTERM into a report.
#define CATCH_CONFIG_NO_POSIX_SIGNALS
#include <catch2/catch.hpp>

#include "ipc/process.hpp"

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    return Catch::Session().run(argc, argv);
}
