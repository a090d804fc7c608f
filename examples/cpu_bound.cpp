// examples/cpu_bound.cpp — CPU-bound work is what processes are for: count the primes below a
// limit in one process, then split the same count over process_cpu_count() processes (the CPUs it may use) and compare.
// Python:  t = time.time(); count_share(0, 1); print(time.time() - t)      # here, one process
//          counts = RawArray('l', n)
//          ps = [Process(target=count_into, args=(k, n, counts)) for k in range(n)]
//
//   usage: cpu_bound [fork|spawn]
#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <vector>

#include <ipc/ipc.hpp>

constexpr long limit = 3'000'000, block = 10'000;

bool is_prime(long n) {
    if (n < 2) return false;
    for (long d = 2; d * d <= n; ++d)
        if (n % d == 0) return false;
    return true;
}

// Share k of n: blocks k, k+n, k+2n, ... Big numbers cost more to test, so dealing out small
// blocks in turn gives every process about the same work; one contiguous range each would not.
long count_share(int k, int n) {
    long found = 0;
    for (long start = k * block; start < limit; start += n * block)
        for (long i = start; i < std::min(start + block, limit); ++i) found += is_prime(i);
    return found;
}

// Each process writes its own slot of a shared Array: no two write the same element, so no lock.
void count_into(int k, int n, ipc::RawArray<long> counts) { counts[k] = count_share(k, n); }

long milliseconds_since(std::chrono::steady_clock::time_point begin) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - begin).count();
}

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    const auto method = ipc::parse_start_method(argc > 1 ? argv[1] : "fork");

    auto begin = std::chrono::steady_clock::now();
    const long alone = count_share(0, 1);
    const long one = std::max(1L, milliseconds_since(begin));
    std::cout << "1 process: " << alone << " primes below " << limit << " in " << one << " ms\n";

    const int n = ipc::process_cpu_count();
    ipc::RawArray<long> counts(n);
    begin = std::chrono::steady_clock::now();  // process start-up counts too: it is part of the price
    std::vector<ipc::Process> processes;
    for (int k = 0; k < n; ++k) processes.emplace_back(ipc::ProcessOptions{.start_method = method}, count_into, k, n, counts);
    for (auto& p : processes) p.start();
    for (auto& p : processes) p.join();
    const long together = std::accumulate(counts.begin(), counts.end(), 0L);
    const long many = std::max(1L, milliseconds_since(begin));
    std::cout << n << " processes: " << together << " primes below " << limit << " in " << many << " ms\n";

    // The speed-up depends on how busy the machine is; only the counts must agree.
    std::cout << "speed-up " << std::fixed << std::setprecision(2) << double(one) / double(many) << "x with " << n
              << " processes\n";
    std::cout << (alone == together ? "the results agree" : "the results DIFFER") << '\n';
    return alone == together ? 0 : 1;
}
