// net/handshakes.hpp — a Listener's handshakes in flight: each accepted client's handshake runs on a
// thread of its own, at most max_in_flight at once, so a client that says nothing costs only its own
// handshake time, not that of every client behind it. Private to the library.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "ipc/listener.hpp"
#include "net/handshake.hpp"
#include "sys/fd.hpp"

namespace ipc::detail {

class Handshakes {
public:
    static constexpr std::size_t max_in_flight = 64;

    /// A handshake that ended: the Listener's end of the new Pipe, or why it failed.
    struct Finished {
        Peer peer;
        std::optional<Connection> connection;
        std::exception_ptr error;
    };

    Handshakes();
    /// Ends the handshakes in flight at once (their sockets are shut down) and waits for their threads.
    ~Handshakes();
    Handshakes(const Handshakes&) = delete;
    Handshakes& operator=(const Handshakes&) = delete;

    /// The process that started them: a forked child has none of their threads, and must not wait for them.
    [[nodiscard]] pid_t owner() const noexcept { return owner_; }
    [[nodiscard]] bool has_room();
    /// Runs the Listener's side of the handshake on `client`, on a thread of its own.
    void start(Fd client, std::string what, ListenerOptions options, Peer peer, Transport transport);
    /// The handshake that ended first and was not taken yet.
    std::optional<Finished> take();
    /// Readable while a finished handshake waits to be taken (for poll(2) beside the listening socket).
    [[nodiscard]] int ready_descriptor() const noexcept { return ready_.get(); }

private:
    struct Flight {
        Fd socket;
        std::thread thread;
        bool done = false;
    };
    void finish(std::list<Flight>::iterator flight, Finished finished);
    void join_done();  // with mutex_ held

    pid_t owner_;
    Fd ready_;  // an eventfd
    std::mutex mutex_;
    std::list<Flight> flights_;
    std::deque<Finished> finished_;
};

}  // namespace ipc::detail
