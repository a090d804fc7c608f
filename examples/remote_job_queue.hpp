// examples/remote_job_queue.hpp — the queue type that remote_job_queue_server serves and
// remote_job_queue_client uses through proxies: both programs include it, as both sides of
// Python's remote-manager example know queue.Queue. Calls from several clients run side by side
// on the server's threads, so it is thread-safe, and get() may block while others put().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>

#include <ipc/error.hpp>

template <class T>
class JobQueue {
public:
    void put(T item) {
        {
            std::lock_guard lock(mutex_);
            items_.push_back(std::move(item));
        }
        ready_.notify_one();
    }
    /// The oldest item; waits up to `seconds` for one (ipc::TimeoutError, sent to the caller, after).
    T get(double seconds) {
        std::unique_lock lock(mutex_);
        if (!ready_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return !items_.empty(); }))
            throw ipc::TimeoutError("JobQueue.get: nothing came within " + std::to_string(seconds) + " s");
        T item = std::move(items_.front());
        items_.pop_front();
        return item;
    }
    [[nodiscard]] std::size_t qsize() const {
        std::lock_guard lock(mutex_);
        return items_.size();
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<T> items_;
};
