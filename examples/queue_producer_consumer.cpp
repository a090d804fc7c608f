// examples/queue_producer_consumer.cpp — producers and consumers sharing one Queue; the consumers
// stop at a sentinel (Python's None), one per consumer, put after every producer has finished.
// Python:  q = Queue(); [Process(target=produce, args=(q, k)) ...]; [Process(target=consume, ...)]
//          for p in producers: p.join()
//          for c in consumers: q.put(None)
//
//   usage: queue_producer_consumer [fork|spawn]
#include <iostream>
#include <optional>
#include <utility>
#include <vector>

#include <ipc/ipc.hpp>

constexpr int producers = 3, consumers = 2, items_each = 1000;

// std::nullopt plays Python's None: a value of the queue's own type that no producer sends.
using Item = std::optional<int>;

void produce(ipc::Queue<Item> items) {
    for (int i = 1; i <= items_each; ++i) items.put(i);
}

// Which consumer gets which item is up to the scheduler; only the totals are certain.
void consume(ipc::Queue<Item> items, ipc::Queue<std::pair<long, long>> totals) {
    long sum = 0, count = 0;
    while (const Item item = items.get()) {
        sum += *item;
        ++count;
    }
    totals.put({sum, count});  // one message, so two consumers' totals cannot interleave
}

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    const auto method = ipc::parse_start_method(argc > 1 ? argv[1] : "fork");

    ipc::Queue<Item> items;
    ipc::Queue<std::pair<long, long>> totals;
    std::vector<ipc::Process> making, taking;
    for (int k = 0; k < producers; ++k) making.emplace_back(ipc::ProcessOptions{.start_method = method}, produce, items);
    for (int k = 0; k < consumers; ++k)
        taking.emplace_back(ipc::ProcessOptions{.start_method = method}, consume, items, totals);
    for (auto& p : making) p.start();
    for (auto& c : taking) c.start();

    // Sentinels go in only after every producer is done: a consumer that met its sentinel earlier
    // would stop while real items still come. A consumer stops at the first one it takes, so each
    // needs its own.
    for (auto& p : making) p.join();
    for (int k = 0; k < consumers; ++k) items.put(std::nullopt);

    long sum = 0, count = 0;
    for (int k = 0; k < consumers; ++k) {
        const auto [consumer_sum, consumer_count] = totals.get();
        sum += consumer_sum;
        count += consumer_count;
    }
    for (auto& c : taking) c.join();

    const long expected = long{producers} * items_each * (items_each + 1) / 2;
    const bool correct = sum == expected && count == producers * items_each;
    std::cout << consumers << " consumers took " << count << " items of " << producers * items_each << ", sum "
              << sum << " (expected " << expected << "): " << (correct ? "correct" : "WRONG") << '\n';
    return correct ? 0 : 1;
}
