// mpi/world.cpp — starting and ending ipc's part of an MPI job: MPI_Init_thread inside ipc::init
// when a launcher started the program, a communicator of ipc's own, and at rank 0's exit the end of
// every worker rank (exit, then their byes, then MPI_Finalize on every rank).
#include "mpi/world.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
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

/// Sends exit to ranks first … first + count - 1 of `comm`, and reads until each said bye.
void end_workers(MPI_Comm comm, int first, int count) {
    for (int rank = first; rank < first + count; ++rank) {
        const MpiCall call;
        MPI_Send(nullptr, 0, MPI_BYTE, rank, exit_tag, comm);
    }
    std::vector<std::byte> dropped;
    for (int byes = 0; byes < count;) {
        MPI_Message message;
        MPI_Status status;
        wait_message(comm, MPI_ANY_SOURCE, MPI_ANY_TAG, message, status, [] { return false; });
        receive(message, status, dropped);
        if (status.MPI_TAG == bye_tag) ++byes;
    }
}

/// Rank 0, at exit: every worker rank leaves its loop; what they still send is read and dropped.
void end_world() {
    auto& state = world();
    if (!state.active || state.ending_job.test()) return;  // MPI_Abort may exit through here
    state.active = false;
    const ipc::detail::SigpipeBlocked dead_workers_are_errors;
    end_workers(state.comm, 1, state.size - 1);
    MPI_Waitall(static_cast<int>(state.leftover_sends.size()), state.leftover_sends.data(), MPI_STATUSES_IGNORE);
    state.leftover_buffers.clear();
    MPI_Comm_free(&state.comm);
    MPI_Finalize();
}

/// MPI_Init_thread with the thread support a pool's threads need; ipc's communicator.
void start_mpi(int* argc, char*** argv) {
    int provided = 0;
    check(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
    if (provided < MPI_THREAD_MULTIPLE) {
        end_job("ipc::mpi: this MPI library does not support MPI_THREAD_MULTIPLE, which a pool's threads need; "
                "rebuild it with thread support");
    }
    auto& state = world();
    MPI_Comm_dup(MPI_COMM_WORLD, &state.comm);
    MPI_Comm_set_errhandler(state.comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(state.comm, &state.rank);
    MPI_Comm_size(state.comm, &state.size);
    state.active = true;
}

/// A worker an mpi::Pool spawned: serves that pool, then leaves.
[[noreturn]] void serve_spawning_pool(int argc, char** argv) {
    start_mpi(&argc, &argv);
    MPI_Comm parent = MPI_COMM_NULL;
    MPI_Comm_get_parent(&parent);
    int code = 0;
    if (parent == MPI_COMM_NULL) {
        std::fprintf(stderr, "ipc::mpi: %s given, but no mpi::Pool spawned this process\n", spawned_worker_marker);
        code = 2;
    } else {
        MPI_Comm_set_errhandler(parent, MPI_ERRORS_RETURN);
        try {
            char host[MPI_MAX_PROCESSOR_NAME] = {};
            int length = 0;
            MPI_Get_processor_name(host, &length);
            const auto hello = ipc::encode(Hello{static_cast<std::int32_t>(::getpid()), std::string(host)});
            check(MPI_Send(hello.data(), static_cast<int>(hello.size()), MPI_BYTE, 0, hello_tag, parent), "MPI_Send");
            serve_pools(parent);
        } catch (const std::exception& error) {
            std::fprintf(stderr, "ipc::mpi: spawned worker %d failed: %s\n", world().rank, error.what());
            code = 1;
        }
    }
    if (code != 0) MPI_Abort(MPI_COMM_WORLD, code);
    MPI_Comm_disconnect(&parent);
    MPI_Comm_free(&world().comm);
    MPI_Finalize();
    std::exit(0);
}

}  // namespace

World& world() {
    static World instance;
    return instance;
}

namespace {
[[noreturn]] void wait_for_the_end() {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}
}  // namespace

MpiCall::MpiCall() : lock_(world().calls) {
    if (!world().ending_job.test()) return;
    lock_.unlock();
    wait_for_the_end();
}

void end_job(const std::string& why) {
    // A second MPI_Abort, while the first one runs, would exit through the atexit handlers.
    if (world().ending_job.test_and_set()) wait_for_the_end();
    std::fprintf(stderr, "%s\n", why.c_str());
    // Calls in progress finish first (one blocked on the dead peer is given 2 s).
    std::unique_lock calls(world().calls, std::defer_lock);
    (void)calls.try_lock_for(std::chrono::seconds(2));
    std::thread([] {
        std::this_thread::sleep_for(std::chrono::seconds(10));
        std::fprintf(stderr, "ipc::mpi: MPI_Abort did not end the job within 10 s; exiting\n");
        std::_Exit(1);
    }).detach();
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::_Exit(1);
}

void check(int code, const char* call) {
    if (code != MPI_SUCCESS) throw ProcessError(std::string("ipc::mpi: ") + call + " failed: " + error_text(code));
}

void start_world(int argc, char** argv) {
    if (argc >= 2 && argv[1] && std::string_view(argv[1]) == spawned_worker_marker) serve_spawning_pool(argc, argv);
    if (!started_by_launcher()) return;
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    start_mpi(&argc, &argv);
    auto& state = world();
    state.launched = true;
    char name[MPI_MAX_PROCESSOR_NAME] = {};
    int length = 0;
    MPI_Get_processor_name(name, &length);
    std::vector<char> names(state.rank == 0 ? static_cast<std::size_t>(state.size) * MPI_MAX_PROCESSOR_NAME : 0);
    MPI_Gather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, state.comm);
    for (int rank = 0; state.rank == 0 && rank < state.size; ++rank)
        state.hosts.emplace_back(names.data() + static_cast<std::size_t>(rank) * MPI_MAX_PROCESSOR_NAME);
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

Ranks spawn_workers(int count) {
    auto& state = world();
    if (!state.active) {
        // No launcher: this process becomes an MPI job of one (a singleton), which may spawn.
        int initialized = 0;
        MPI_Initialized(&initialized);
        if (initialized)
            throw ProcessError("ipc::mpi::Pool: MPI was started outside ipc (MPI_Init in main?); "
                               "call ipc::init(argc, argv) first and let it start MPI");
        // PMIx 3's shared-memory data store (Debian 12's Open MPI 4.1) now and then leaves a
        // spawned process waiting in MPI_Init for good; its hash store does not. Under mpirun the
        // user exports this (README); here this process starts the runtime, so it can choose.
        ::setenv("PMIX_MCA_gds", "hash", 0);
        int argc = 0;
        char** argv = nullptr;
        start_mpi(&argc, &argv);
        std::atexit(end_world);
    }
    char program[4096] = {};
    // The spawned processes run this executable by its path: "/proc/self/exe" would name the launcher.
    if (::readlink("/proc/self/exe", program, sizeof program - 1) < 0)
        throw ProcessError("ipc::mpi::Pool: cannot find this program's path (/proc/self/exe)");
    MPI_Info info;
    MPI_Info_create(&info);
    // Open MPI counts one slot per core and refuses more workers than slots unless told.
    MPI_Info_set(info, "map_by", "slot:OVERSUBSCRIBE");
    std::string marker = spawned_worker_marker;
    char* arguments[] = {marker.data(), nullptr};
    Ranks ranks;
    std::vector<int> errors(static_cast<std::size_t>(count), MPI_SUCCESS);
    // MPI_Comm_spawn returns once every new process finished MPI_Init; one that dies first leaves
    // it waiting for good (Open MPI), so a watchdog gives it 60 s. The call itself stays on this
    // thread: Open MPI 4.1's spawn from another thread sometimes never returned.
    std::mutex watchdog_mutex;
    std::condition_variable watchdog_wake;
    bool returned = false;
    std::thread watchdog([&] {
        std::unique_lock lock(watchdog_mutex);
        if (watchdog_wake.wait_for(lock, std::chrono::seconds(60), [&] { return returned; })) return;
        end_job("ipc::mpi::Pool: the " + std::to_string(count) +
                " workers it spawned did not start within 60 s (did one of them crash in MPI_Init?); ending the job");
    });
    const int code = MPI_Comm_spawn(program, arguments, count, info, 0, MPI_COMM_SELF, &ranks.comm, errors.data());
    {
        std::lock_guard lock(watchdog_mutex);
        returned = true;
    }
    watchdog_wake.notify_all();
    watchdog.join();
    MPI_Info_free(&info);
    check(code, "MPI_Comm_spawn");
    MPI_Comm_set_errhandler(ranks.comm, MPI_ERRORS_RETURN);
    ranks.spawned = true;
    ranks.hellos.resize(static_cast<std::size_t>(count));
    std::vector<std::byte> buffer;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (int said = 0; said < count; ++said) {
        MPI_Message message;
        MPI_Status status;
        if (!wait_message(ranks.comm, MPI_ANY_SOURCE, hello_tag, message, status,
                          [&] { return std::chrono::steady_clock::now() > deadline; })) {
            end_job("ipc::mpi::Pool: " + std::to_string(count - said) + " of " + std::to_string(count) +
                    " spawned workers did not start within 60 s; ending the job");
        }
        receive(message, status, buffer);
        ranks.hellos.at(static_cast<std::size_t>(status.MPI_SOURCE)) = ipc::decode<Hello>(buffer);
    }
    return ranks;
}

void end_spawned(Ranks& ranks, int count, std::vector<MPI_Request>& sends) {
    const ipc::detail::SigpipeBlocked dead_workers_are_errors;
    end_workers(ranks.comm, 0, count);
    const MpiCall call;
    MPI_Waitall(static_cast<int>(sends.size()), sends.data(), MPI_STATUSES_IGNORE);
    MPI_Comm_disconnect(&ranks.comm);
}

bool wait_message(MPI_Comm comm, int source, int tag, MPI_Message& message, MPI_Status& status,
                  const std::function<bool()>& stop, Patience patience) {
    // Spin a little (a reply often follows at once), then sleep a little longer each time up to
    // 1 ms, looking at `stop` between probes. Idle, sleep from the start: under oversubscription
    // each probe yields, and a rank that keeps yielding counts as runnable, which makes ipc's own
    // waits on this machine give up spinning (sys/spin.hpp).
    const int spins = patience == Patience::expecting ? 200 : 0;
    auto pause = patience == Patience::expecting ? std::chrono::microseconds(0) : std::chrono::microseconds(1000);
    for (int probes = 0;; ++probes) {
        int found = 0;
        {
            const MpiCall call;
            check(MPI_Improbe(source, tag, comm, &found, &message, &status), "MPI_Improbe");
        }
        if (found) return true;
        if (stop()) return false;
        if (probes < spins) continue;
        pause = std::min<std::chrono::microseconds>(std::chrono::microseconds(1000),
                                                    pause + std::chrono::microseconds(10) + pause / 4);
        std::this_thread::sleep_for(pause);
    }
}

void receive(MPI_Message& message, const MPI_Status& status, std::vector<std::byte>& buffer) {
    const MpiCall call;
    int count = 0;
    check(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
    buffer.resize(static_cast<std::size_t>(count));
    check(MPI_Mrecv(buffer.data(), count, MPI_BYTE, &message, MPI_STATUS_IGNORE), "MPI_Mrecv");
}

}  // namespace ipc::mpi::detail
