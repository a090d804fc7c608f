// examples/delayed_start.cpp — a delayed start that can be cancelled, as Python's threading.Timer,
// with a process: the child waits on a "cancelled" Event for the delay, and runs the function only
// if nobody set it in time. That is exactly how Timer.run() is written in CPython.
// Python:  t = Timer(0.2, greet, args=('hello',)); t.start(); t.join()      # runs after 0.2 s
//          t = Timer(60, greet, args=('never',));  t.start(); t.cancel()   # never runs
//
//   usage: delayed_start [fork|spawn]
#include <chrono>
#include <iostream>
#include <string>
#include <utility>

#include <ipc/ipc.hpp>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

void greet(const std::string& text) { std::cout << "timer: " << text << '\n'; }

// The target of the timer process. Event::wait(timeout) returns true when cancel() set the event,
// false when the delay ran out: the wait is both the delay and the way to cancel it.
void run_after(std::chrono::milliseconds delay, ipc::Event cancelled, std::string text) {
    const auto begin = Clock::now();
    if (cancelled.wait(delay)) return;
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - begin);
    std::cout << "timer: fired after " << (waited >= delay ? "at least " : "only ") << delay.count() << " ms\n";
    greet(text);
}

// Python's Timer for a process: start() starts the countdown, cancel() stops it if it has not fired.
class Timer {
public:
    Timer(ipc::StartMethod method, std::chrono::milliseconds delay, std::string text)
        : process_({.start_method = method}, run_after, delay, cancelled_, std::move(text)) {}
    void start() { process_.start(); }
    void cancel() { cancelled_.set(); }
    void join() { process_.join(); }

private:
    ipc::Event cancelled_;  // declared first: process_ takes a handle to it
    ipc::Process process_;
};

int main(int argc, char** argv) {
    ipc::init(argc, argv);
    const auto method = ipc::parse_start_method(argc > 1 ? argv[1] : "fork");

    Timer fires(method, 200ms, "hello, a little later");
    fires.start();
    std::cout << "parent: timer started, waiting for it" << std::endl;  // out before the timer prints
    fires.join();

    Timer cancelled(method, 60s, "this is never printed");
    cancelled.start();
    cancelled.cancel();  // long before its 60 s are up
    cancelled.join();    // returns at once: the child saw the event and ended without greeting
    std::cout << "parent: the second timer was cancelled before it fired\n";
}
