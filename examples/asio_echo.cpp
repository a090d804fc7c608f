// examples/asio_echo.cpp — an Asio event loop talks to a child process without an extra thread: a
// coroutine sends words over a Pipe, co_awaits the answers from a Queue, then the child's end of file.
//
//   usage: asio_echo [fork|spawn]
#include <cctype>
#include <iostream>
#include <string>
#include <utility>  // before Boost 1.74's awaitable.hpp, which uses std::exchange without it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <ipc/asio.hpp>  // not part of ipc/ipc.hpp: only programs that use Asio pay for it
#include <ipc/ipc.hpp>

namespace net = boost::asio;

// The child is plain blocking code: it answers each word on the Queue, and on "stop" reports how
// many it handled and returns (its exit closes its end of the Pipe).
int shout(ipc::Connection words, ipc::Queue<std::string> answers) {
    for (int handled = 0;; ++handled) {
        auto word = words.recv<std::string>();
        if (word == "stop") {
            words.send(handled);
            return 0;
        }
        for (auto& c : word) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        answers.put(word + "!");
    }
}

// The parent's side, one coroutine on the io_context: every co_await lets other work run meanwhile.
net::awaitable<void> talk(ipc::asio::AsyncConnection& conn, ipc::asio::AsyncQueue<std::string>& answers) {
    for (std::string word : {"hello", "asio", "world"}) {
        co_await conn.async_send(word, net::use_awaitable);
        std::cout << word << " -> " << co_await answers.async_get(net::use_awaitable) << '\n';
    }
    co_await conn.async_send(std::string("stop"), net::use_awaitable);
    std::cout << "worker handled " << co_await conn.async_recv<int>(net::use_awaitable) << " words\n";
    try {
        co_await conn.async_recv<int>(net::use_awaitable);
    } catch (const ipc::EOFError&) {  // errors reach a coroutine as exceptions
        std::cout << "end of file: the worker is gone\n";
    }
}

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    const auto method = ipc::parse_start_method(argc > 1 ? argv[1] : "fork");

    auto [mine, theirs] = ipc::Pipe();
    ipc::Queue<std::string> answers;
    ipc::Process worker({.start_method = method}, shout, theirs, answers);
    worker.start();
    theirs.close();  // only the worker holds that end now, so its exit is our end of file

    net::io_context io;
    {
        // The wrappers register the handles' readiness descriptors with the io_context; like any
        // Asio I/O object they go before the io_context does.
        ipc::asio::AsyncConnection conn(io, mine);
        ipc::asio::AsyncQueue<std::string> async_answers(io, answers);
        net::co_spawn(io, talk(conn, async_answers), net::detached);
        io.run();  // returns when the coroutine is done
    }
    worker.join();
    std::cout << "worker exit code " << *worker.exitcode() << '\n';
}
