// examples/manager_results.cpp — Python's documented Manager example, then a results dict filled by
// a Pool: every worker writes its own results into one dict and appends to one log list that the
// parent reads afterwards, with no Queue in between.
// Python:  with Manager() as manager:
//              d = manager.dict(); l = manager.list(range(10))
//              p = Process(target=f, args=(d, l)); p.start(); p.join()
//
//   usage: manager_results [fork|spawn|forkserver]
#include <iostream>
#include <string>
#include <tuple>
#include <vector>

#include <ipc/ipc.hpp>

using Results = ipc::DictProxy<std::string, double>;
using Log = ipc::ListProxy<std::string>;

// The Python documentation's f(d, l): d[1] = '1'; d['2'] = 2; d[0.25] = None; l.reverse(). A C++
// dict has one key type and one value type, so the keys are strings and the values numbers here.
void f(ipc::DictProxy<std::string, int> d, ipc::ListProxy<int> l) {
    d["1"] = 1;
    d["2"] = 2;
    d["0.25"] = 0;
    l.reverse();
}

// A Pool task: it gets the proxies as arguments and writes straight into the manager's heap.
int simulate(Results results, Log log, int run) {
    double value = 1.0;
    for (int step = 0; step < 1000 * (run + 1); ++step) value = value * 0.999 + 0.001 * step;
    results.set("run " + std::to_string(run), value);
    log.append("run " + std::to_string(run) + " done");
    return run;
}

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    const auto method = ipc::parse_start_method(argc > 1 ? argv[1] : "fork");

    ipc::Manager manager(ipc::ManagerOptions{.start_method = method});
    auto d = manager.dict<std::string, int>();
    auto l = manager.list<int>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    ipc::Process p(ipc::ProcessOptions{.start_method = method}, f, d, l);
    p.start();
    p.join();
    std::cout << "d:";
    for (const auto& [key, value] : d.items()) std::cout << " " << key << "=" << value;
    std::cout << "\nl:";
    for (int x : l.copy()) std::cout << " " << x;
    std::cout << "\n";

    auto results = manager.dict<std::string, double>();
    auto log = manager.list<std::string>();
    {
        ipc::Pool pool({.processes = 2, .start_method = method});
        std::vector<std::tuple<Results, Log, int>> tasks;
        for (int run = 0; run < 8; ++run) tasks.emplace_back(results, log, run);
        (void)pool.starmap(&simulate, tasks);
    }
    std::cout << results.size() << " results, " << log.size() << " log lines; run 7 gave " << results.at("run 7")
              << "\n";
    manager.shutdown();
    try {
        (void)results.size();
    } catch (const ipc::ManagerError& error) {
        std::cout << "after shutdown: " << error.what() << "\n";
    }
}
