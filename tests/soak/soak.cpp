// tests/soak/soak.cpp — ./run.sh soak: producers and consumers share one Queue for a while, messages
// of random sizes (some stream through the ring), while processes are killed and frozen at random;
// then it counts what was sent, delivered, lost, duplicated and torn, and what was left behind.
// Exit code 0 when nothing was lost beyond what the kills allow (one message per consumer killed:
// the one it was taking), nothing duplicated or torn, and nothing left behind.
//
//   usage: ipc_soak [SECONDS] [SEED]     (default 60 s, seed from the clock)
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <ipc/ipc.hpp>

namespace {

using namespace std::chrono_literals;

constexpr std::size_t producers = 3, consumers = 2;
constexpr std::size_t max_producer_ids = 4096;   // every replacement of a killed producer takes a new id
constexpr std::size_t max_sequences = 1 << 16;   // per producer id; a producer stops there
constexpr std::size_t ring_bytes = 128 << 10;    // messages above 64 KiB stream

/// What producers and consumers report, in shared memory.
struct Ledger {
    std::atomic<std::uint64_t> committed[max_producer_ids];  // sequences whose put returned, per producer id
    std::atomic<std::uint64_t> delivered;
    std::atomic<std::uint64_t> duplicated;
    std::atomic<std::uint64_t> torn;
    std::atomic<std::uint64_t> bits[max_producer_ids * max_sequences / 64];  // which (id, sequence) arrived
};

struct Header {
    std::uint32_t producer, sequence, size, unused;
};

std::uint8_t byte_at(const Header& header, std::size_t index) {
    return static_cast<std::uint8_t>(header.producer * 31 + header.sequence * 7 + index * 13 + (index >> 9));
}

Ledger& ledger_in(const ipc::SharedMemory& block) { return *reinterpret_cast<Ledger*>(block.buf().data()); }

/// Random sizes: mostly small, some of a few KB, a few that stream through the ring.
std::size_t random_size(std::mt19937& random) {
    const auto kind = random() % 100;
    if (kind < 70) return random() % 256;
    if (kind < 95) return 1024 + random() % (16 << 10);
    return (64 << 10) + random() % (256 << 10);
}

void produce(ipc::Queue<std::vector<std::uint8_t>> queue, ipc::SharedMemory block, std::uint32_t id, ipc::Event stop) {
    auto& ledger = ledger_in(block);
    std::mt19937 random(id * 7919u);
    for (std::uint32_t sequence = 0; sequence < max_sequences && !stop.is_set(); ++sequence) {
        const Header header{id, sequence, static_cast<std::uint32_t>(random_size(random)), 0};
        std::vector<std::uint8_t> message(sizeof header + header.size);
        std::memcpy(message.data(), &header, sizeof header);
        for (std::size_t i = 0; i < header.size; ++i) message[sizeof header + i] = byte_at(header, i);
        for (;;) {
            try {
                queue.put(message, true, 1s);
                break;
            } catch (const ipc::Full&) {
                if (stop.is_set()) return;
            }
        }
        ledger.committed[id].store(sequence + 1);
    }
}

void consume(ipc::Queue<std::vector<std::uint8_t>> queue, ipc::SharedMemory block, ipc::Event drained) {
    auto& ledger = ledger_in(block);
    for (;;) {
        std::vector<std::uint8_t> message;
        try {
            message = queue.get(true, 200ms);
        } catch (const ipc::Empty&) {
            if (drained.is_set()) return;
            continue;
        }
        Header header{};
        bool whole = message.size() >= sizeof header;
        if (whole) {
            std::memcpy(&header, message.data(), sizeof header);
            whole = header.producer < max_producer_ids && header.sequence < max_sequences &&
                    message.size() == sizeof header + header.size;
            for (std::size_t i = 0; whole && i < header.size; ++i) whole = message[sizeof header + i] == byte_at(header, i);
        }
        if (!whole) {
            ledger.torn.fetch_add(1);
            continue;
        }
        const std::size_t bit = header.producer * max_sequences + header.sequence;
        const auto mask = std::uint64_t{1} << (bit % 64);
        if (ledger.bits[bit / 64].fetch_or(mask) & mask) ledger.duplicated.fetch_add(1);
        ledger.delivered.fetch_add(1);
    }
}

std::size_t count_entries(const std::filesystem::path& directory, const std::string& prefix) {
    std::size_t count = 0;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(directory, error))
        if (entry.path().filename().string().starts_with(prefix)) ++count;
    return count;
}

struct Tally {
    std::uint64_t sent = 0, lost = 0, beyond_committed = 0;
};

Tally tally(const Ledger& ledger, std::uint32_t ids) {
    Tally result;
    for (std::uint32_t id = 0; id < ids; ++id) {
        const auto committed = ledger.committed[id].load();
        result.sent += committed;
        for (std::uint64_t sequence = 0; sequence < max_sequences; ++sequence) {
            const std::size_t bit = id * max_sequences + sequence;
            const bool arrived = (ledger.bits[bit / 64].load() >> (bit % 64)) & 1;
            if (sequence < committed && !arrived) ++result.lost;
            if (sequence >= committed && arrived) ++result.beyond_committed;  // in flight when its producer was killed
        }
    }
    return result;
}

}  // namespace

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    const int seconds = argc > 1 ? std::stoi(argv[1]) : 60;
    const auto seed = argc > 2 ? static_cast<unsigned>(std::stoul(argv[2]))
                               : static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count());
    { ipc::Lock first; }  // starts the resource tracker, whose socket stays open for good
    const auto fds_before = count_entries("/proc/self/fd", "");
    const auto own_prefix = "ipc_" + std::to_string(::getpid()) + "_";
    std::mt19937 random(seed);

    std::uint32_t next_id = 0;
    std::uint64_t producer_kills = 0, consumer_kills = 0, freezes = 0;
    Tally result;
    std::uint64_t delivered = 0, duplicated = 0, torn = 0;
    std::size_t left_in_queue = 0;
    {
        ipc::Queue<std::vector<std::uint8_t>> queue(0, ring_bytes);
        ipc::SharedMemory block(sizeof(Ledger));
        ipc::Event stop, drained;
        auto method = [&] { return random() % 2 ? ipc::StartMethod::fork : ipc::StartMethod::spawn; };
        auto new_producer = [&] {
            ipc::Process process({.start_method = method()}, produce, queue, block, next_id++, stop);
            process.start();
            return process;
        };
        auto new_consumer = [&] {
            ipc::Process process({.start_method = method()}, consume, queue, block, drained);
            process.start();
            return process;
        };
        std::vector<ipc::Process> making, taking;
        for (std::size_t i = 0; i < producers; ++i) making.push_back(new_producer());
        for (std::size_t i = 0; i < consumers; ++i) taking.push_back(new_consumer());

        // The chaos: now and then a random child is killed (and replaced) or frozen for a while.
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
        while (std::chrono::steady_clock::now() < until && next_id < max_producer_ids - producers) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50 + random() % 250));
            const bool producer = random() % 2;
            auto& group = producer ? making : taking;
            auto& victim = group[random() % group.size()];
            if (random() % 5 < 2) {
                victim.kill();
                victim.join();
                victim = producer ? new_producer() : new_consumer();
                ++(producer ? producer_kills : consumer_kills);
            } else {
                ::kill(*victim.pid(), SIGSTOP);
                std::this_thread::sleep_for(std::chrono::milliseconds(10 + random() % 300));
                ::kill(*victim.pid(), SIGCONT);
                ++freezes;
            }
        }
        stop.set();
        for (auto& process : making) process.join();
        // Nothing comes any more: consumers empty the queue, each stopping at its first empty get
        // (the last one only when it is empty: no other consumer holds it then).
        drained.set();
        for (auto& process : taking) process.join();
        left_in_queue = queue.qsize();
        const auto& ledger = ledger_in(block);
        result = tally(ledger, next_id);
        delivered = ledger.delivered.load();
        duplicated = ledger.duplicated.load();
        torn = ledger.torn.load();
    }
    const auto shm_left = count_entries("/dev/shm", own_prefix);
    const auto fds_left = count_entries("/proc/self/fd", "") - fds_before;
    int zombies = 0;
    while (::waitpid(-1, nullptr, WNOHANG) > 0) ++zombies;

    std::printf("soak: %d s, seed %u, %zu producers and %zu consumers at a time (fork and spawn)\n", seconds, seed,
                producers, consumers);
    std::printf("chaos: %llu producers and %llu consumers killed, %llu freezes\n",
                static_cast<unsigned long long>(producer_kills), static_cast<unsigned long long>(consumer_kills),
                static_cast<unsigned long long>(freezes));
    std::printf("messages: %llu sent, %llu delivered (%llu of them in flight when their producer was killed)\n",
                static_cast<unsigned long long>(result.sent), static_cast<unsigned long long>(delivered),
                static_cast<unsigned long long>(result.beyond_committed));
    std::printf("lost %llu (at most %llu allowed: one per consumer killed), duplicated %llu, torn %llu\n",
                static_cast<unsigned long long>(result.lost), static_cast<unsigned long long>(consumer_kills),
                static_cast<unsigned long long>(duplicated), static_cast<unsigned long long>(torn));
    std::printf("left behind: %zu messages in the queue, %zu in /dev/shm, %zd descriptors, %d zombies\n",
                left_in_queue, shm_left, static_cast<std::ptrdiff_t>(fds_left), zombies);
    const bool ok = result.lost <= consumer_kills && duplicated == 0 && torn == 0 && left_in_queue == 0 &&
                    shm_left == 0 && fds_left == 0 && zombies == 0 && result.sent > 0;
    std::printf("%s\n", ok ? "soak: passed" : "soak: FAILED");
    return ok ? 0 : 1;
}
