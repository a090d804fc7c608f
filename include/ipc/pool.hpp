// ipc/pool.hpp — Python's multiprocessing.Pool for C++: worker processes that run map, imap,
// starmap and apply calls; a worker that dies fails its task instead of hanging the pool.
#pragma once

#include <chrono>
#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ipc/codec.hpp"
#include "ipc/detail/pool_call.hpp"
#include "ipc/detail/pool_core.hpp"
#include "ipc/detail/deadline.hpp"
#include "ipc/detail/pool_jobs.hpp"
#include "ipc/error.hpp"
#include "ipc/process.hpp"

namespace ipc {

struct PoolOptions {
    std::optional<int> processes = {};                ///< empty: process_cpu_count()
    std::optional<std::uint64_t> maxtasksperchild = {};  ///< empty: a worker serves until the pool ends
    std::optional<StartMethod> start_method = {};     ///< empty: get_start_method()
};

/// The pending result of an asynchronous call (Python's AsyncResult).
template <class T>
class AsyncResult {
public:
    /// The result; rethrows the call's exception; TimeoutError when not ready within `timeout`.
    T get(std::optional<std::chrono::nanoseconds> timeout = {}) const {
        if constexpr (std::is_void_v<T>)
            state_->get(deadline(timeout));
        else
            return state_->get(deadline(timeout));
    }
    /// Waits until ready or `timeout`; true when ready.
    bool wait(std::optional<std::chrono::nanoseconds> timeout = {}) const { return state_->wait(deadline(timeout)); }
    [[nodiscard]] bool ready() const { return state_->ready(); }
    /// Whether the call returned without an exception; ValueError when not ready yet.
    [[nodiscard]] bool successful() const { return state_->successful(); }

private:
    friend class Pool;
    explicit AsyncResult(std::shared_ptr<detail::ResultState<T>> state) : state_(std::move(state)) {}
    static detail::Deadline deadline(std::optional<std::chrono::nanoseconds> timeout) {
        return timeout ? detail::Deadline::after(*timeout) : detail::Deadline::never();
    }

    std::shared_ptr<detail::ResultState<T>> state_;
};

/// The results of imap / imap_unordered, available while later ones compute: iterate it with a
/// range-for, or call next(). A worker's exception is rethrown where its result would be.
template <class R>
class IMapIterator {
public:
    /// The next result; empty after the last; TimeoutError when none comes within `timeout`.
    std::optional<R> next(std::optional<std::chrono::nanoseconds> timeout = {}) {
        return job_->next(timeout ? detail::Deadline::after(*timeout) : detail::Deadline::never());
    }

    class iterator {
    public:
        using value_type = R;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        R& operator*() const { return const_cast<R&>(*current_); }
        iterator& operator++() {
            current_ = owner_->next();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) { return !it.current_; }

    private:
        friend class IMapIterator;
        explicit iterator(IMapIterator* owner) : owner_(owner), current_(owner->next()) {}
        IMapIterator* owner_ = nullptr;
        std::optional<R> current_;
    };
    /// Starts the iteration: blocks until the first result (input iterator: one pass).
    iterator begin() { return iterator(this); }
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    friend class Pool;
    explicit IMapIterator(std::shared_ptr<detail::IMapJob<R>> job) : job_(std::move(job)) {}
    std::shared_ptr<detail::IMapJob<R>> job_;
};

/// A pool of worker processes (Python's multiprocessing.Pool). Functions and arguments travel to
/// the workers as messages, so a function must be usable as a spawn target — a plain function, a
/// captureless lambda or a serializable function object — under either start method. Arguments
/// passed as a tuple, as Python's `args=(...)`.
///
/// The destructor terminates the workers, as leaving Python's `with Pool() as p:` does; call
/// close() and join() first to let queued work finish.
class Pool {
    template <class Args>
    struct StoredArgs {
        using type = std::decay_t<Args>;
    };
    template <class... Ts>
    struct StoredArgs<std::tuple<Ts...>> {
        using type = std::tuple<detail::stored_arg_t<Ts>...>;
    };
    /// An argument tuple as workers receive it: string literals become std::string.
    template <class Args>
    using stored_args_t = typename StoredArgs<std::decay_t<Args>>::type;

    template <class Range>
    using range_arg_t = detail::stored_arg_t<std::ranges::range_value_t<Range>>;
    template <class F, class Range, detail::CallStyle style>
    using map_result_t = detail::stored_result_t<detail::call_result_t<F, range_arg_t<Range>, style>>;

public:
    explicit Pool(std::optional<int> processes = {}) : Pool(PoolOptions{.processes = processes}) {}
    explicit Pool(PoolOptions options) : Pool(std::move(options), std::vector<std::byte>{}) {}
    /// `initializer(initargs...)` runs once in each worker before its first task.
    template <class Init, class... InitArgs>
    Pool(PoolOptions options, Init initializer, std::tuple<InitArgs...> initargs = {})
        : Pool(std::move(options), encode_initializer(initializer, std::move(initargs))) {}

    Pool(Pool&&) noexcept = default;
    Pool& operator=(Pool&&) noexcept = default;
    ~Pool() = default;

    /// fn applied to every element, results in input order (Python's map). Without `chunksize`,
    /// the input is cut into about 4 chunks per worker.
    template <class F, std::ranges::input_range Range>
    auto map(F fn, Range&& iterable, std::optional<std::size_t> chunksize = {}) {
        return map_async(fn, std::forward<Range>(iterable), chunksize).state_->take();
    }
    template <class F, std::ranges::input_range Range, class R = map_result_t<F, Range, detail::CallStyle::single>>
    AsyncResult<std::vector<R>> map_async(F fn, Range&& iterable, std::optional<std::size_t> chunksize = {},
                                          std::type_identity_t<ResultCallback<std::vector<R>>> callback = {},
                                          ErrorCallback error_callback = {}) {
        return submit_map<detail::CallStyle::single, R>(fn, std::forward<Range>(iterable), chunksize,
                                                        std::move(callback), std::move(error_callback));
    }

    /// fn(args...) for every tuple of arguments (Python's starmap).
    template <class F, std::ranges::input_range Range>
    auto starmap(F fn, Range&& iterable, std::optional<std::size_t> chunksize = {}) {
        return starmap_async(fn, std::forward<Range>(iterable), chunksize).state_->take();
    }
    template <class F, std::ranges::input_range Range, class R = map_result_t<F, Range, detail::CallStyle::star>>
    AsyncResult<std::vector<R>> starmap_async(F fn, Range&& iterable, std::optional<std::size_t> chunksize = {},
                                              std::type_identity_t<ResultCallback<std::vector<R>>> callback = {},
                                              ErrorCallback error_callback = {}) {
        return submit_map<detail::CallStyle::star, R>(fn, std::forward<Range>(iterable), chunksize, std::move(callback),
                                                      std::move(error_callback));
    }

    /// Results in input order as they become ready, while later ones compute (Python's imap). A
    /// view (a generator, say) is read on a thread of the pool while the workers compute, up to 64
    /// chunks per worker ahead of the results taken (all of it once the pool is closed): an endless
    /// view works, and an input that throws yields the results of the chunks before, then the
    /// error. A view must stay valid while it is read (a view of a container reads the container);
    /// a container is copied at once.
    template <class F, std::ranges::input_range Range>
    auto imap(F fn, Range&& iterable, std::size_t chunksize = 1) {
        return submit_imap(fn, std::forward<Range>(iterable), chunksize, true);
    }
    /// Results in the order they complete (Python's imap_unordered).
    template <class F, std::ranges::input_range Range>
    auto imap_unordered(F fn, Range&& iterable, std::size_t chunksize = 1) {
        return submit_imap(fn, std::forward<Range>(iterable), chunksize, false);
    }

    /// fn(args...) in a worker; blocks for the result (Python's apply).
    template <class F, class Args = std::tuple<>>
    auto apply(F fn, Args args = {}) {
        return apply_async(fn, std::move(args)).get();
    }
    template <class F, class Args = std::tuple<>, class R = detail::call_result_t<F, stored_args_t<Args>, detail::CallStyle::star>>
    AsyncResult<R> apply_async(F fn, Args args = {}, std::type_identity_t<ResultCallback<R>> callback = {},
                               ErrorCallback error_callback = {}) {
        using Arg = stored_args_t<Args>;
        detail::check_pool_call<F, Arg, detail::CallStyle::star>();
        auto& pool = core("apply_async");
        auto job = std::make_shared<detail::ApplyJob<R>>(std::move(callback), std::move(error_callback));
        const Arg stored(std::move(args));
        pool.submit(job, encode_chunks<detail::CallStyle::star>(fn, std::span<const Arg>(&stored, 1), 1));
        return AsyncResult<R>(std::move(job));
    }

    /// No new work from now on; queued work still runs. The workers exit once it is done.
    void close() { core("close").close(); }
    /// Stops the workers now; work not finished fails with a ProcessError.
    void terminate() { core("terminate").terminate(); }
    /// Waits for the workers to exit; only after close() or terminate() (a ValueError otherwise).
    void join() { core("join").join(detail::Deadline::never()); }
    /// The same, waiting at most `timeout`: false when the workers still run (Python's Pool.join
    /// has no timeout; every blocking call of ipc has one).
    template <class Rep, class Period>
    bool join(std::chrono::duration<Rep, Period> timeout) {
        return core("join").join(detail::deadline_after(timeout));
    }
    /// The number of worker processes.
    [[nodiscard]] int processes() const { return core("processes").processes(); }

protected:
    struct WithCore {};
    /// A pool whose workers are reached otherwise (ipc::mpi::Pool: MPI ranks).
    Pool(WithCore, std::unique_ptr<detail::PoolCore> core);

    template <class Init, class... InitArgs>
    static std::vector<std::byte> encode_initializer(const Init& initializer, std::tuple<InitArgs...> initargs) {
        using Arg = std::tuple<detail::stored_arg_t<InitArgs>...>;
        detail::check_pool_call<Init, Arg, detail::CallStyle::star>();
        const Arg stored(std::move(initargs));
        std::vector<std::byte> call;
        codec::Writer writer(call);
        detail::encode_call<Init, Arg, detail::CallStyle::star>(writer, initializer, std::span<const Arg>(&stored, 1));
        return call;
    }

private:
    Pool(PoolOptions options, std::vector<std::byte> initializer);

    template <class Range>
    static auto collect(Range&& iterable) {
        using Arg = range_arg_t<Range>;
        static_assert(!std::is_same_v<Arg, bool>, "ipc::Pool: map over bool values is not supported; use char or int");
        std::vector<Arg> args;
        if constexpr (std::ranges::sized_range<Range>) args.reserve(std::ranges::size(iterable));
        for (auto&& value : iterable) args.emplace_back(std::forward<decltype(value)>(value));
        return args;
    }

    /// Python's rule: about four chunks per worker.
    std::size_t automatic_chunksize(std::size_t count) const {
        const auto per = static_cast<std::size_t>(processes()) * 4;
        return std::max<std::size_t>(1, count / per + (count % per ? 1 : 0));
    }

    template <detail::CallStyle style, class F, class Arg>
    static std::vector<std::vector<std::byte>> encode_chunks(const F& fn, std::span<const Arg> args, std::size_t chunksize) {
        std::vector<std::vector<std::byte>> chunks;
        chunks.reserve((args.size() + chunksize - 1) / chunksize);
        for (std::size_t start = 0; start < args.size(); start += chunksize) {
            auto& message = chunks.emplace_back(detail::task_header_size);
            codec::Writer writer(message);
            detail::encode_call<F, Arg, style>(writer, fn, args.subspan(start, std::min(chunksize, args.size() - start)));
        }
        return chunks;
    }

    static std::size_t checked_chunksize(std::size_t chunksize) {
        if (chunksize == 0) throw ValueError("Pool: chunksize must be at least 1");
        return chunksize;
    }

    template <detail::CallStyle style, class R, class F, class Range>
    AsyncResult<std::vector<R>> submit_map(const F& fn, Range&& iterable, std::optional<std::size_t> chunksize,
                                           ResultCallback<std::vector<R>> callback, ErrorCallback error_callback) {
        using Arg = range_arg_t<Range>;
        detail::check_pool_call<F, Arg, style>();
        auto& pool = core("map");
        const auto args = collect(std::forward<Range>(iterable));
        const auto size = chunksize ? checked_chunksize(*chunksize) : automatic_chunksize(args.size());
        auto chunks = encode_chunks<style>(fn, std::span<const Arg>(args), size);
        auto job = std::make_shared<detail::MapJob<R>>(chunks.size(), std::move(callback), std::move(error_callback));
        if (!chunks.empty()) pool.submit(job, std::move(chunks));
        return AsyncResult<std::vector<R>>(std::move(job));
    }

    /// imap reads a view (a generator: its elements may be costly, endless or throw) on a feeder
    /// thread while the workers compute; a container, whose elements are there already, is copied
    /// at once and queued whole, which is four times faster for tiny tasks (benchmarks/README.md).
    template <class Range>
    static constexpr bool read_while_computing =
        std::ranges::view<std::remove_cvref_t<Range>> &&
        (!std::is_lvalue_reference_v<Range> || std::copyable<std::remove_cvref_t<Range>>);

    /// The input of an imap, read chunk by chunk on the feeder's thread.
    template <class View, class F>
    struct ChunkReader {
        View input;
        F fn;
        std::size_t chunksize;
        std::optional<std::ranges::iterator_t<View>> position = {};

        std::optional<std::vector<std::byte>> operator()() {
            using Arg = detail::stored_arg_t<std::ranges::range_value_t<View>>;
            if (!position) position = std::ranges::begin(input);
            std::vector<Arg> args;
            args.reserve(chunksize);
            for (auto& at = *position; args.size() < chunksize && at != std::ranges::end(input); ++at)
                args.emplace_back(*at);
            if (args.empty()) return std::nullopt;
            return std::move(encode_chunks<detail::CallStyle::single>(fn, std::span<const Arg>(args), chunksize).front());
        }
    };

    template <class F, class Range>
    auto submit_imap(const F& fn, Range&& iterable, std::size_t chunksize, bool ordered) {
        using Arg = range_arg_t<Range>;
        using R = map_result_t<F, Range, detail::CallStyle::single>;
        static_assert(!std::is_same_v<Arg, bool>, "ipc::Pool: imap over bool values is not supported; use char or int");
        detail::check_pool_call<F, Arg, detail::CallStyle::single>();
        auto& pool = core(ordered ? "imap" : "imap_unordered");
        checked_chunksize(chunksize);
        if constexpr (read_while_computing<Range>) {
            using View = decltype(std::views::all(std::forward<Range>(iterable)));
            auto job = std::make_shared<detail::IMapJob<R>>(ordered);
            auto reader = std::make_shared<ChunkReader<View, F>>(
                ChunkReader<View, F>{std::views::all(std::forward<Range>(iterable)), fn, chunksize});
            pool.feed(job, [reader] { return (*reader)(); });
            return IMapIterator<R>(std::move(job));
        } else {
            const auto args = collect(std::forward<Range>(iterable));
            auto chunks = encode_chunks<detail::CallStyle::single>(fn, std::span<const Arg>(args), chunksize);
            auto job = std::make_shared<detail::IMapJob<R>>(chunks.size(), ordered);
            if (!chunks.empty()) pool.submit(job, std::move(chunks));
            return IMapIterator<R>(std::move(job));
        }
    }

    detail::PoolCore& core(const char* operation) const;

    std::unique_ptr<detail::PoolCore> core_;
};

}  // namespace ipc
