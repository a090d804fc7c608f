// mpi/world.cpp — starting and ending ipc's part of an MPI job: MPI_Init_thread inside ipc::init
// when a launcher started the program, a communicator of ipc's own, and at rank 0's exit the end of
// every worker rank (exit, then their byes, then MPI_Finalize on every rank).
#include "mpi/world.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "ipc/error.hpp"

namespace ipc::mpi::detail {

namespace {

/// Open MPI, MPICH and PMIx-based launchers each set one of these in every rank's environment.
bool started_by_launcher() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"})
        if (std::getenv(name)) return true;
    return false;
}

std::string error_text(int code) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
    return std::string(text, static_cast<std::size_t>(length));
}

/// Rank 0, at exit: every worker rank leaves its loop; what they still send is read and dropped.
void end_world() {
    auto& state = world();
    if (!state.active) return;
    state.active = false;
    for (int rank = 1; rank < state.size; ++rank) MPI_Send(nullptr, 0, MPI_BYTE, rank, exit_tag, state.comm);
    std::vector<std::byte> dropped;
    for (int byes = 0; byes < state.size - 1;) {
        MPI_Message message;
        MPI_Status status;
        wait_message(state.comm, MPI_ANY_SOURCE, MPI_ANY_TAG, message, status, [] { return false; });
        receive(message, status, dropped);
        if (status.MPI_TAG == bye_tag) ++byes;
    }
    MPI_Waitall(static_cast<int>(state.leftover_sends.size()), state.leftover_sends.data(), MPI_STATUSES_IGNORE);
    state.leftover_buffers.clear();
    MPI_Comm_free(&state.comm);
    MPI_Finalize();
}

}  // namespace

World& world() {
    static World instance;
    return instance;
}

void check(int code, const char* call) {
    if (code != MPI_SUCCESS) throw ProcessError(std::string("ipc::mpi: ") + call + " failed: " + error_text(code));
}

void start_world(int argc, char** argv) {
    if (!started_by_launcher()) return;
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    int provided = 0;
    check(MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
    auto& state = world();
    if (provided < MPI_THREAD_MULTIPLE) {
        std::fprintf(stderr, "ipc::mpi: this MPI library does not support MPI_THREAD_MULTIPLE, which a pool's "
                             "threads need; rebuild it with thread support\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &state.comm);
    MPI_Comm_set_errhandler(state.comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(state.comm, &state.rank);
    MPI_Comm_size(state.comm, &state.size);
    char name[MPI_MAX_PROCESSOR_NAME] = {};
    int length = 0;
    MPI_Get_processor_name(name, &length);
    std::vector<char> names(state.rank == 0 ? static_cast<std::size_t>(state.size) * MPI_MAX_PROCESSOR_NAME : 0);
    MPI_Gather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, state.comm);
    for (int rank = 0; state.rank == 0 && rank < state.size; ++rank)
        state.hosts.emplace_back(names.data() + static_cast<std::size_t>(rank) * MPI_MAX_PROCESSOR_NAME);
    state.active = true;
    if (state.rank == 0) {
        std::atexit(end_world);
        return;
    }
    int code = 0;
    try {
        serve_pools(state.comm);
    } catch (const std::exception& error) {
        std::fprintf(stderr, "ipc::mpi: worker rank %d failed: %s\n", state.rank, error.what());
        code = 1;
    }
    if (code != 0) MPI_Abort(MPI_COMM_WORLD, code);
    state.active = false;
    MPI_Comm_free(&state.comm);
    MPI_Finalize();
    std::exit(0);
}

bool wait_message(MPI_Comm comm, int source, int tag, MPI_Message& message, MPI_Status& status,
                  const std::function<bool()>& stop) {
    // Spin a little (a reply often follows at once), then sleep a little longer each time up to
    // 1 ms, looking at `stop` between probes.
    auto pause = std::chrono::microseconds(0);
    for (int probes = 0;; ++probes) {
        int found = 0;
        check(MPI_Improbe(source, tag, comm, &found, &message, &status), "MPI_Improbe");
        if (found) return true;
        if (stop()) return false;
        if (probes < 200) continue;
        pause = std::min<std::chrono::microseconds>(std::chrono::microseconds(1000),
                                                    pause + std::chrono::microseconds(10) + pause / 4);
        std::this_thread::sleep_for(pause);
    }
}

void receive(MPI_Message& message, const MPI_Status& status, std::vector<std::byte>& buffer) {
    int count = 0;
    check(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
    buffer.resize(static_cast<std::size_t>(count));
    check(MPI_Mrecv(buffer.data(), count, MPI_BYTE, &message, MPI_STATUS_IGNORE), "MPI_Mrecv");
}

}  // namespace ipc::mpi::detail
