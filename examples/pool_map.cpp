// examples/pool_map.cpp — a pool of worker processes: the seed's `x - y` over four pairs with three
// workers, each task taking a second, so the work takes two rounds (≈2 s), not four; then the
// same pool survives a worker that is killed in the middle of a task.
// Python:  with Pool(3) as p: outputs = p.starmap(func2, [(1, 1), (9, 9), (4, 4), (3, 3)])
//
//   usage: pool_map [fork|spawn]
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>
#include <tuple>
#include <vector>

#include <ipc/ipc.hpp>

// Workers receive the function as a message, so it is a plain function (a captureless lambda or a
// serializable function object would do too), under fork as well as spawn.
int func2(int x, int y) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    return x - y;
}

int square_or_die(int x) {
    if (x == 3) ::kill(::getpid(), SIGKILL);  // as the OOM killer would
    return x * x;
}

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    const auto method = ipc::parse_start_method(argc > 1 ? argv[1] : "fork");

    ipc::Pool pool({.processes = 3, .start_method = method});
    const std::vector<std::tuple<int, int>> args{{1, 1}, {9, 9}, {4, 4}, {3, 3}};
    const auto started = std::chrono::steady_clock::now();
    const auto outputs = pool.starmap(&func2, args);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;

    std::cout << "outputs:";
    for (int value : outputs) std::cout << ' ' << value;
    std::cout << "\n4 one-second tasks on 3 workers took " << took.count() << " s\n";

    // Python's Pool.map would hang forever here (CPython gh-66587); ipc fails only that task.
    try {
        pool.map(&square_or_die, std::vector<int>{1, 2, 3, 4});
    } catch (const ipc::WorkerDiedError& e) {
        std::cout << "map failed: " << e.what() << '\n';
    }
    const auto squares = pool.map(&square_or_die, std::vector<int>{4, 5, 6});  // a new worker took over
    std::cout << "next map: " << squares[0] << ' ' << squares[1] << ' ' << squares[2] << '\n';

    pool.close();  // no more work; the workers exit when the queued work is done
    pool.join();
    std::cout << "pool joined\n";
}
