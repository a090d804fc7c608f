// net/handshakes.cpp — the Listener's handshakes in flight, each on a thread of its own (handshakes.hpp).
#include "net/handshakes.hpp"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

#include "ipc/error.hpp"
#include "net/handshake.hpp"

namespace ipc::detail {

Handshakes::Handshakes() : owner_(::getpid()), ready_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!ready_) throw_os_error("eventfd for", "a Listener's handshakes");
}

Handshakes::~Handshakes() {
    std::list<Flight> flights;
    {
        std::lock_guard lock(mutex_);
        // Their peers see the connection end; their threads stop waiting for them.
        for (auto& flight : flights_)
            if (!flight.done) ::shutdown(flight.socket.get(), SHUT_RDWR);
        flights.splice(flights.end(), flights_);
    }
    for (auto& flight : flights) flight.thread.join();
}

bool Handshakes::has_room() {
    std::lock_guard lock(mutex_);
    join_done();
    return flights_.size() < max_in_flight;
}

void Handshakes::start(Fd client, std::string what, ListenerOptions options, Peer peer, Transport transport) {
    std::lock_guard lock(mutex_);
    auto flight = flights_.insert(flights_.end(), Flight{std::move(client), {}, false});
    const int socket = flight->socket.get();
    struct Unstarted {  // no thread could be made: the client is dropped, and the caller told
        std::list<Flight>& flights;
        std::list<Flight>::iterator flight;
        bool armed = true;
        ~Unstarted() {
            if (armed) flights.erase(flight);
        }
    } unstarted{flights_, flight};
    flight->thread = std::thread([this, flight, socket, what = std::move(what), options = std::move(options),
                                  peer = std::move(peer), transport = std::move(transport)]() mutable {
        Finished finished{std::move(peer), std::nullopt, nullptr};
        try {
            finished.connection = handshake_as_listener(socket, what, options, transport);
        } catch (...) {
            finished.error = std::current_exception();
        }
        finish(flight, std::move(finished));
    });
    unstarted.armed = false;
}

void Handshakes::finish(std::list<Flight>::iterator flight, Finished finished) {
    std::lock_guard lock(mutex_);
    finished_.push_back(std::move(finished));
    flight->done = true;
    const std::uint64_t one = 1;
    (void)!::write(ready_.get(), &one, sizeof one);
}

std::optional<Handshakes::Finished> Handshakes::take() {
    std::lock_guard lock(mutex_);
    join_done();
    if (finished_.empty()) return std::nullopt;
    auto finished = std::move(finished_.front());
    finished_.pop_front();
    if (finished_.empty()) {
        std::uint64_t count = 0;
        (void)!::read(ready_.get(), &count, sizeof count);
    }
    return finished;
}

void Handshakes::join_done() {
    // A thread marked done only returns from finish(), which needs nothing this lock guards any more.
    for (auto flight = flights_.begin(); flight != flights_.end();) {
        if (!flight->done) {
            ++flight;
            continue;
        }
        flight->thread.join();
        flight = flights_.erase(flight);
    }
}

}  // namespace ipc::detail
