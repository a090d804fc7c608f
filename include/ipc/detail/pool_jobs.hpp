// ipc/detail/pool_jobs.hpp — where a Pool call's results gather in the parent: one job per call,
// filled chunk by chunk on the pool's handler thread and read by the caller (get, iteration).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "ipc/detail/pool_call.hpp"
#include "ipc/detail/pool_core.hpp"
#include "ipc/detail/deadline.hpp"
#include "ipc/error.hpp"

namespace ipc {

/// Called with a successful result on the pool's handler thread (as in Python): keep it short, and
/// do not wait on the same pool from it.
namespace detail {
template <class T>
struct ResultCallbackOf {
    using type = std::function<void(const T&)>;
};
template <>
struct ResultCallbackOf<void> {
    using type = std::function<void()>;
};
}  // namespace detail
template <class T>
using ResultCallback = typename detail::ResultCallbackOf<T>::type;
/// Called with the exception on the pool's handler thread.
using ErrorCallback = std::function<void(std::exception_ptr)>;

namespace detail {

/// Waits on a condition variable until `deadline`; false when it passed first.
template <class Predicate>
bool wait_for_state(std::condition_variable& changed, std::unique_lock<std::mutex>& lock, const Deadline& deadline,
                    Predicate ready) {
    if (deadline.is_never()) {
        changed.wait(lock, ready);
        return true;
    }
    return changed.wait_until(lock, deadline.at(), ready);
}

/// Reports an exception escaping a user callback: it must not take down the handler thread.
void report_callback_failure(const char* which) noexcept;

/// A result that becomes ready once, with a value or an exception (AsyncResult's state).
template <class T>
class ResultState : public JobBase {
public:
    using Stored = stored_result_t<T>;

    ResultState(ResultCallback<T> callback, ErrorCallback error_callback)
        : callback_(std::move(callback)), error_callback_(std::move(error_callback)) {}

    bool wait(const Deadline& deadline) {
        std::unique_lock lock(mutex_);
        return wait_for_state(changed_, lock, deadline, [this] { return ready_; });
    }
    [[nodiscard]] bool ready() {
        std::lock_guard lock(mutex_);
        return ready_;
    }
    [[nodiscard]] bool successful() {
        std::lock_guard lock(mutex_);
        if (!ready_) throw ValueError("AsyncResult.successful(): the result is not ready");
        return !error_;
    }
    /// The value (copied, so get() may be called again), or the exception rethrown.
    Stored get(const Deadline& deadline) {
        std::unique_lock lock(mutex_);
        if (!wait_for_state(changed_, lock, deadline, [this] { return ready_; }))
            throw TimeoutError("AsyncResult.get(): the result was not ready within the timeout");
        if (error_) std::rethrow_exception(error_);
        return *value_;
    }
    /// Moves the value out: for map(), which reads it once.
    Stored take() {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [this] { return ready_; });
        if (error_) std::rethrow_exception(error_);
        return std::move(*value_);
    }

protected:
    void finish(std::optional<Stored> value, std::exception_ptr error) {
        {
            std::lock_guard lock(mutex_);
            if (settled_) return;  // a map fails at its first failed chunk; later chunks change nothing
            value_ = std::move(value);
            error_ = std::move(error);
            settled_ = true;
        }
        // Callbacks run before waiters wake, as in Python, so get() sees their effects.
        try {
            if (error_ && error_callback_) error_callback_(error_);
            if (!error_ && callback_) {
                if constexpr (std::is_void_v<T>)
                    callback_();
                else
                    callback_(*value_);
            }
        } catch (...) {
            report_callback_failure(error_ ? "error_callback" : "callback");
        }
        {
            std::lock_guard lock(mutex_);
            ready_ = true;
        }
        changed_.notify_all();
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    bool settled_ = false;  // the outcome is decided (the handler thread runs the callbacks next)
    bool ready_ = false;    // visible to get(): the callbacks have run
    std::optional<Stored> value_;
    std::exception_ptr error_;
    ResultCallback<T> callback_;
    ErrorCallback error_callback_;
};

/// Decodes what invoke_chunk encoded: the results, then the failure that stopped the chunk, if any.
template <class Stored>
std::pair<std::vector<Stored>, std::exception_ptr> decode_chunk(codec::Reader& reader) {
    auto values = codec::load<std::vector<Stored>>(reader);
    auto failure = codec::load<std::optional<RemoteFailure>>(reader);
    return {std::move(values), failure ? remote_exception(*failure) : nullptr};
}

/// map / starmap: a vector of every result in input order, or the first error.
template <class R>
class MapJob final : public ResultState<std::vector<R>> {
public:
    MapJob(std::size_t chunks, ResultCallback<std::vector<R>> callback, ErrorCallback error_callback)
        : ResultState<std::vector<R>>(std::move(callback), std::move(error_callback)),
          chunks_(chunks),
          remaining_(chunks) {
        if (chunks == 0) this->finish(std::vector<R>{}, nullptr);
    }

    void chunk_done(std::size_t chunk, codec::Reader& reader) override {
        auto [values, error] = decode_chunk<R>(reader);
        if (error) return chunk_failed(chunk, std::move(error));
        chunks_[chunk] = std::move(values);
        if (--remaining_ > 0) return;
        std::size_t total = 0;
        for (const auto& part : chunks_) total += part.size();
        std::vector<R> all;
        all.reserve(total);
        for (auto& part : chunks_) std::move(part.begin(), part.end(), std::back_inserter(all));
        chunks_.clear();
        this->finish(std::move(all), nullptr);
    }
    void chunk_failed(std::size_t, std::exception_ptr error) override { this->finish(std::nullopt, std::move(error)); }

private:
    std::vector<std::vector<R>> chunks_;  // handler thread only
    std::size_t remaining_;
};

/// apply: the single result of a one-element chunk.
template <class R>
class ApplyJob final : public ResultState<R> {
public:
    using ResultState<R>::ResultState;

    void chunk_done(std::size_t chunk, codec::Reader& reader) override {
        auto [values, error] = decode_chunk<stored_result_t<R>>(reader);
        if (error) return chunk_failed(chunk, std::move(error));
        if (values.size() != 1) return chunk_failed(chunk, std::make_exception_ptr(CodecError("apply: the worker sent no result")));
        this->finish(std::move(values.front()), nullptr);
    }
    void chunk_failed(std::size_t, std::exception_ptr error) override { this->finish(std::nullopt, std::move(error)); }
};

/// imap / imap_unordered: results handed out one at a time, in input order or as chunks complete.
/// The number of chunks is known from the start, or (input read by a feeder) once the input ends;
/// an error reading the input comes where the chunk it cut short would have.
template <class R>
class IMapJob final : public JobBase {
public:
    IMapJob(std::size_t chunks, bool ordered) : outcomes_(chunks), total_(chunks), ordered_(ordered) {}
    /// For an input that a feeder reads: the count comes with input_ended().
    explicit IMapJob(bool ordered) : ordered_(ordered) {}

    void chunk_done(std::size_t chunk, codec::Reader& reader) override {
        auto [values, error] = decode_chunk<R>(reader);
        arrive(chunk, Outcome{std::move(values), std::move(error)});
    }
    void chunk_failed(std::size_t chunk, std::exception_ptr error) override { arrive(chunk, Outcome{{}, std::move(error)}); }

    std::size_t room_to_feed(std::size_t fed, std::size_t ahead, std::chrono::milliseconds limit) override {
        std::unique_lock lock(mutex_);
        const auto wanted = std::max<std::size_t>(1, ahead / 2);
        const auto room = [&] { return chunks_taken_ + ahead - std::min(fed, chunks_taken_ + ahead); };
        if (room() >= wanted) return room();
        // The consumer wakes the feeder only once that much room is made, not at every result.
        feeder_waits_for_ = fed + wanted - ahead;
        const bool made = changed_.wait_for(lock, limit, [&] { return room() >= wanted; });
        feeder_waits_for_ = no_feeder_waits;
        return made ? room() : 0;
    }
    void input_ended(std::size_t chunks, std::exception_ptr error) override {
        {
            std::lock_guard lock(mutex_);
            total_ = chunks + (error ? 1 : 0);
            if (error) store(chunks, Outcome{{}, std::move(error)});
        }
        changed_.notify_all();
    }

    /// The next result; empty after the last; TimeoutError when none comes by `deadline`.
    std::optional<R> next(const Deadline& deadline) {
        std::unique_lock lock(mutex_);
        for (;;) {
            if (current_) {
                if (position_ < current_->values.size()) return std::move(current_->values[position_++]);
                auto error = std::move(current_->error);
                current_.reset();
                if (error) std::rethrow_exception(error);
            }
            if (total_ && chunks_taken_ == *total_) return std::nullopt;
            if (!wait_for_state(changed_, lock, deadline,
                                [this] { return next_chunk_ready() || (total_ && chunks_taken_ == *total_); }))
                throw TimeoutError("IMapIterator.next(): no result within the timeout");
            if (next_chunk_ready()) take_next_chunk();
        }
    }

private:
    struct Outcome {
        std::vector<R> values;
        std::exception_ptr error;
    };

    void arrive(std::size_t chunk, Outcome outcome) {
        {
            std::lock_guard lock(mutex_);
            store(chunk, std::move(outcome));
        }
        changed_.notify_all();
    }
    void store(std::size_t chunk, Outcome outcome) {
        if (!ordered_) {
            completed_.push_back(std::move(outcome));
            return;
        }
        const auto index = chunk - chunks_taken_;  // a chunk arrives once, before it is taken
        if (index >= outcomes_.size()) outcomes_.resize(index + 1);
        outcomes_[index] = std::move(outcome);
    }
    bool next_chunk_ready() const {
        if (!ordered_) return !completed_.empty();
        return !outcomes_.empty() && outcomes_.front().has_value();
    }
    void take_next_chunk() {
        if (ordered_) {
            current_ = std::move(outcomes_.front());
            outcomes_.pop_front();
        } else {
            current_ = std::move(completed_.front());
            completed_.pop_front();
        }
        ++chunks_taken_;
        position_ = 0;
        if (chunks_taken_ >= feeder_waits_for_) changed_.notify_all();
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<std::optional<Outcome>> outcomes_;  // ordered: from the next chunk to take on
    std::deque<Outcome> completed_;                // unordered: by arrival
    std::optional<std::size_t> total_;             // chunks, once known
    bool ordered_;
    std::size_t chunks_taken_ = 0;
    static constexpr std::size_t no_feeder_waits = ~std::size_t{0};
    std::size_t feeder_waits_for_ = no_feeder_waits;  // chunks taken at which a waiting feeder has room
    std::optional<Outcome> current_;
    std::size_t position_ = 0;
};

}  // namespace detail
}  // namespace ipc
