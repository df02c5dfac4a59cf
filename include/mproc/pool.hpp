// mproc/pool.hpp
//
// Pool: a pool of worker processes that run tasks (Python's
// multiprocessing.Pool), with the supervision CPython's lacks: a worker
// that dies in the middle of a task fails that task with WorkerLostError
// and is replaced; nothing waits forever.
//
//   std::string process_url(const std::string& url) { ... }
//
//   mproc::Pool pool(5);
//   std::vector<std::string> pages = pool.map(process_url, urls);
//   mproc::AsyncResult<int> r = pool.apply_async(heavy, 1000);
//   int digits = r.get(std::chrono::seconds(3));  // TimeoutError if not ready
//
// Functions travel to the workers by reference (see mproc/function.hpp): a
// plain function, a capture-less lambda, a serializable function object or
// mproc::partial(f, args...). A capturing lambda or a std::function is a
// compile error saying why. Arguments and results travel through the codec
// (mproc/codec.hpp). An exception thrown by a task comes back as itself for
// standard and registered types, as RemoteError otherwise (see
// mproc/remote_exception.hpp).
//
// Workers are daemonic children named "ForkPoolWorker-N", forked when the
// pool is made (and to replace one that ended), which ignore SIGINT (Ctrl-C
// is the parent's to handle) and die with the parent.
//
// The destructor does what leaving Python's `with Pool() as pool:` does:
// terminate() (tasks not finished fail with BrokenProcessPool), then waits
// for the workers to be gone. Call close() and join() first to let the
// work finish.

#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/async_result.hpp"
#include "mproc/codec.hpp"
#include "mproc/detail/pool_core.hpp"
#include "mproc/errors.hpp"
#include "mproc/function.hpp"
#include "mproc/imap.hpp"
#include "mproc/process.hpp"
#include "mproc/timeout.hpp"

namespace mproc {

namespace detail {

// Checks, with messages in words, that `F` and its arguments can go to a
// worker process.
template <class F, class... Args>
constexpr void check_pool_call() {
  check_target_part<F>();
  (check_transferable<Args>(), ...);
}

// Collects the chunks of a map into one vector.
template <class R>
class MapSink final : public TaskSink {
 public:
  MapSink(std::shared_ptr<TaskState<std::vector<R>>> state, std::size_t size, std::size_t chunksize, std::size_t chunks)
      : state_(std::move(state)), values_(size), chunksize_(chunksize), remaining_(chunks) {}

  void deliver(std::size_t index, Decoder& body) override {
    std::vector<R> values;
    std::vector<std::pair<std::uint64_t, RemoteException>> errors;
    read_chunk_body(body, values, errors);
    if (!errors.empty()) {
      state_->set_error(remote_exception_ptr(errors.front().second));
      return;
    }
    std::lock_guard lock(mutex_);
    std::size_t at = index * chunksize_;
    if (at + values.size() > values_.size()) body.fail("a chunk's results do not fit the map");
    std::move(values.begin(), values.end(), values_.begin() + static_cast<std::ptrdiff_t>(at));
    if (--remaining_ == 0) state_->set_value(std::move(values_));
  }
  void fail(std::size_t, std::size_t, std::exception_ptr error) override { state_->set_error(std::move(error)); }

 private:
  std::shared_ptr<TaskState<std::vector<R>>> state_;
  std::mutex mutex_;
  std::vector<R> values_;
  std::size_t chunksize_;
  std::size_t remaining_;
};

// Hands the chunks of an imap to its stream (if anyone still iterates it).
template <class R>
class StreamSink final : public TaskSink {
 public:
  explicit StreamSink(std::weak_ptr<ResultStream<R>> stream) : stream_(std::move(stream)) {}

  void deliver(std::size_t index, Decoder& body) override {
    ChunkOutcome<R> outcome;
    std::vector<std::pair<std::uint64_t, RemoteException>> errors;
    read_chunk_body(body, outcome.values, errors);
    outcome.size = outcome.values.size();
    for (auto& [item, error] : errors) outcome.errors.emplace_back(item, remote_exception_ptr(error));
    if (auto stream = stream_.lock()) stream->deliver(index, std::move(outcome));
  }
  void fail(std::size_t index, std::size_t items, std::exception_ptr error) override {
    if (auto stream = stream_.lock()) stream->fail(index, items, std::move(error));
  }

 private:
  std::weak_ptr<ResultStream<R>> stream_;
};

// Python's default chunksize for map: about four chunks per worker.
inline std::size_t default_chunksize(std::size_t items, int processes) {
  std::size_t per = static_cast<std::size_t>(processes) * 4;
  std::size_t chunksize = items / per + (items % per != 0 ? 1 : 0);
  return chunksize == 0 ? 1 : chunksize;
}

// The items of a range, in a vector.
template <class Range>
auto materialize(Range&& range) {
  using Item = std::ranges::range_value_t<Range>;
  std::vector<Item> items;
  if constexpr (std::ranges::sized_range<Range>) items.reserve(std::ranges::size(range));
  for (auto&& item : range) items.push_back(static_cast<Item>(item));
  return items;
}

// The chunk job for F over Items (Star: starmap), encoded.
template <bool Star, class F, class Item>
std::vector<std::byte> encode_chunk(const F& func, std::vector<Item> items) {
  return encode_job(PoolJob(ChunkJob<F, Item, Star>{func, std::move(items)}));
}

// Reads an imap's input a chunk at a time and submits it (on the thread
// that iterates).
template <bool Star, class F, class View>
class PoolFeeder final : public ChunkFeeder {
 public:
  using Item = std::ranges::range_value_t<View>;

  PoolFeeder(std::shared_ptr<PoolCore> core, F func, View view, std::size_t chunksize, std::shared_ptr<TaskSink> sink)
      : core_(std::move(core)), func_(std::move(func)), view_(std::move(view)), chunksize_(chunksize), sink_(std::move(sink)) {}

  std::size_t feed(std::size_t chunk) override {
    if (!position_) position_.emplace(std::ranges::begin(view_));
    std::vector<Item> items;
    while (items.size() < chunksize_ && *position_ != std::ranges::end(view_)) {
      items.push_back(static_cast<Item>(**position_));
      ++*position_;
    }
    std::size_t size = items.size();
    if (size == 0) return 0;
    pool_submit(*core_, PoolTask{encode_chunk<Star>(func_, std::move(items)), sink_, chunk, size});
    return size;
  }

 private:
  std::shared_ptr<PoolCore> core_;
  F func_;
  View view_;
  std::optional<std::ranges::iterator_t<View>> position_;
  std::size_t chunksize_;
  std::shared_ptr<TaskSink> sink_;
};


// What map and imap over a range need to know about F.
template <bool Star, class F, class Range>
struct MapTypes {
  using Func = std::decay_t<F>;
  using Item = std::ranges::range_value_t<Range>;
  using Result = typename ItemResult<Func, Item, Star>::type;
  static_assert(!std::is_void_v<Result>, "map: the function must return a value (use apply_async for calls without one)");
  static_assert(std::is_default_constructible_v<Result>, "map: the function's result type must be default-constructible");
};

// Starts an imap (or imap_unordered) over `range` with `core`'s workers.
template <bool Star, class F, class Range>
auto start_imap(const std::shared_ptr<PoolCore>& core, F&& func, Range&& range, std::size_t chunksize, bool ordered,
                std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt) {
  using Types = MapTypes<Star, F, Range>;
  using R = typename Types::Result;
  check_pool_call<typename Types::Func, typename Types::Item>();
  if (chunksize == 0) throw std::invalid_argument("imap: chunksize must be at least 1");
  auto stream = std::make_shared<ResultStream<R>>(ordered, chunks_ahead(pool_processes(*core), chunksize));
  stream->set_deadline(deadline);
  auto view = std::views::all(std::forward<Range>(range));
  auto sink = std::make_shared<StreamSink<R>>(stream);
  stream->set_feeder(std::make_unique<PoolFeeder<Star, typename Types::Func, decltype(view)>>(
      core, std::forward<F>(func), std::move(view), chunksize, std::move(sink)));
  stream->top_up();
  return IMapIterator<R>(std::move(stream));
}

}  // namespace detail

// Pool
//
// Python's multiprocessing.Pool. Not copyable: one owner, as the `with`
// statement has one.
class Pool {
 public:
  // A pool of `processes` workers (default: cpu_count()), each running
  // initializer(initargs...) first, each replaced after
  // `maxtasksperchild` tasks (0: never). processes < 1 is
  // std::invalid_argument (Python's ValueError). Under the fork start
  // method the initializer may be any callable.
  Pool() : Pool(std::nullopt) {}
  explicit Pool(std::optional<int> processes) : Pool(processes, nullptr) {}
  Pool(std::optional<int> processes, std::nullptr_t /*no initializer*/, std::tuple<> = {},
       std::size_t maxtasksperchild = 0)
      : Pool(processes, std::function<void()>(), maxtasksperchild) {}
  template <class Init, class... InitArgs>
    requires std::is_invocable_v<std::decay_t<Init>&, InitArgs&...>
  Pool(std::optional<int> processes, Init&& initializer, std::tuple<InitArgs...> initargs = {},
       std::size_t maxtasksperchild = 0)
      : Pool(processes,
             std::function<void()>([init = std::decay_t<Init>(std::forward<Init>(initializer)),
                                    args = std::move(initargs)]() mutable { std::apply(init, args); }),
             maxtasksperchild) {}

  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  Pool(Pool&&) noexcept = default;
  Pool& operator=(Pool&&) noexcept = default;

  // Python's `with` exit: terminate(), then join().
  ~Pool() {
    if (!core_) return;
    detail::pool_terminate(*core_);
    detail::pool_join(*core_, std::nullopt);
  }

  // Pool::apply()
  //
  // Runs func(args...) in a worker and returns its result (or throws its
  // exception).
  template <class F, class... Args>
  auto apply(F&& func, Args&&... args) {
    return apply_async(std::forward<F>(func), std::forward<Args>(args)...).get();
  }

  // Pool::apply_async()
  //
  // Runs func(args...) in a worker; the AsyncResult gives its result. With
  // callbacks, `callback(result)` or `error_callback(exception)` runs once,
  // in this process, on the pool's result thread, before the result is
  // ready (keep them short: they hold up the results behind them).
  template <class F, class... Args>
    requires std::is_invocable_v<const std::decay_t<F>&, std::decay_t<Args>...>
  auto apply_async(F&& func, Args&&... args) {
    return apply_async(std::forward<F>(func), std::make_tuple(std::forward<Args>(args)...), nullptr, nullptr);
  }
  template <class F, class... Args, class Callback, class ErrorCallback = std::nullptr_t>
  auto apply_async(F&& func, std::tuple<Args...> args, Callback&& callback, ErrorCallback&& error_callback = nullptr) {
    using Func = std::decay_t<F>;
    using R = detail::CallResult<Func, Args...>;
    detail::check_pool_call<Func, Args...>();
    auto state = std::make_shared<detail::TaskState<R>>(to_callback<R>(std::forward<Callback>(callback)),
                                                       to_error_callback(std::forward<ErrorCallback>(error_callback)));
    auto job = detail::encode_job(
        detail::PoolJob(detail::ApplyJob<Func, Args...>{std::forward<F>(func), std::move(args)}));
    detail::pool_submit(*core(), detail::PoolTask{std::move(job), std::make_shared<detail::ResultSink<R>>(state), 0, 1});
    return AsyncResult<R>(std::move(state));
  }

  // Pool::map()
  //
  // func(item) for each item of `range`, in order; blocks until all are
  // done. The range is read whole first and cut into chunks of `chunksize`
  // items (0: Python's default, about four chunks per worker); each chunk
  // is one task. Throws the first exception a call threw (the other chunks
  // still run).
  template <class F, std::ranges::input_range Range>
  auto map(F&& func, Range&& range, std::size_t chunksize = 0) {
    return map_async(std::forward<F>(func), std::forward<Range>(range), chunksize).take();
  }
  template <class F, class T>
  auto map(F&& func, std::initializer_list<T> items, std::size_t chunksize = 0) {
    return map(std::forward<F>(func), std::vector<T>(items), chunksize);
  }

  // Pool::map_async()
  //
  // map() that returns at once; `callback` gets the whole vector.
  template <class F, std::ranges::input_range Range, class Callback = std::nullptr_t, class ErrorCallback = std::nullptr_t>
  auto map_async(F&& func, Range&& range, std::size_t chunksize = 0, Callback&& callback = nullptr,
                 ErrorCallback&& error_callback = nullptr) {
    return start_map<false>(std::forward<F>(func), std::forward<Range>(range), chunksize,
                            std::forward<Callback>(callback), std::forward<ErrorCallback>(error_callback));
  }

  // Pool::starmap(), Pool::starmap_async()
  //
  // map() where each item is a tuple (or pair) of arguments: func(a, b).
  template <class F, std::ranges::input_range Range>
  auto starmap(F&& func, Range&& range, std::size_t chunksize = 0) {
    return starmap_async(std::forward<F>(func), std::forward<Range>(range), chunksize).take();
  }
  template <class F, std::ranges::input_range Range, class Callback = std::nullptr_t, class ErrorCallback = std::nullptr_t>
  auto starmap_async(F&& func, Range&& range, std::size_t chunksize = 0, Callback&& callback = nullptr,
                     ErrorCallback&& error_callback = nullptr) {
    return start_map<true>(std::forward<F>(func), std::forward<Range>(range), chunksize,
                           std::forward<Callback>(callback), std::forward<ErrorCallback>(error_callback));
  }

  // Pool::imap(), Pool::imap_unordered()
  //
  // func(item) for each item of `range`, as an input range of results (see
  // mproc/imap.hpp): in order, or as they finish. The range is read lazily,
  // a bounded number of chunks ahead, by the thread that iterates; it must
  // outlive the iteration if it is an lvalue (an rvalue is moved in).
  template <class F, std::ranges::input_range Range>
  auto imap(F&& func, Range&& range, std::size_t chunksize = 1) {
    return detail::start_imap<false>(core(), std::forward<F>(func), std::forward<Range>(range), chunksize, true);
  }
  template <class F, std::ranges::input_range Range>
  auto imap_unordered(F&& func, Range&& range, std::size_t chunksize = 1) {
    return detail::start_imap<false>(core(), std::forward<F>(func), std::forward<Range>(range), chunksize, false);
  }

  // Pool::close()
  //
  // No more tasks may be submitted (UsageError); the workers leave once
  // all submitted tasks are done.
  void close() { detail::pool_close(*core()); }

  // Pool::terminate()
  //
  // Kills the workers at once. Tasks not finished fail with BrokenProcessPool.
  void terminate() { detail::pool_terminate(*core()); }

  // Pool::join()
  //
  // Waits for the workers to leave, after close() or terminate()
  // (UsageError before). With a timeout, returns whether they did.
  void join() { detail::pool_join(*core(), std::nullopt); }
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return detail::pool_join(*core(), detail::to_timeout(timeout));
  }

  // Pool::processes()
  //
  // The number of workers (Python's _processes).
  int processes() const { return detail::pool_processes(*core()); }

  // Pool::worker_pids()
  //
  // The pids of the workers alive now.
  std::vector<int> worker_pids() const { return detail::pool_worker_pids(*core()); }

 private:
  Pool(std::optional<int> processes, std::function<void()> initializer, std::size_t maxtasksperchild)
      : core_(detail::start_pool(detail::PoolOptions{check_processes(processes), std::move(initializer),
                                                     maxtasksperchild, "PoolWorker", "Pool"})) {}

  static int check_processes(std::optional<int> processes) {
    if (processes && *processes < 1) throw std::invalid_argument("Pool: the number of processes must be at least 1");
    return processes.value_or(0);
  }

  const std::shared_ptr<detail::PoolCore>& core() const {
    if (!core_) throw UsageError("Pool: this pool was moved from");
    return core_;
  }

  template <class R, class Callback>
  static typename detail::TaskState<R>::Callback to_callback(Callback&& callback) {
    if constexpr (std::is_null_pointer_v<std::decay_t<Callback>>) {
      return {};
    } else if constexpr (std::is_void_v<R>) {
      return [cb = std::forward<Callback>(callback)](const std::monostate&) { cb(); };
    } else {
      return typename detail::TaskState<R>::Callback(std::forward<Callback>(callback));
    }
  }
  template <class ErrorCallback>
  static std::function<void(std::exception_ptr)> to_error_callback(ErrorCallback&& callback) {
    if constexpr (std::is_null_pointer_v<std::decay_t<ErrorCallback>>) {
      return {};
    } else {
      return std::function<void(std::exception_ptr)>(std::forward<ErrorCallback>(callback));
    }
  }

  template <bool Star, class F, class Range, class Callback, class ErrorCallback>
  auto start_map(F&& func, Range&& range, std::size_t chunksize, Callback&& callback, ErrorCallback&& error_callback) {
    using Types = detail::MapTypes<Star, F, Range>;
    using R = typename Types::Result;
    detail::check_pool_call<typename Types::Func, typename Types::Item>();
    auto items = detail::materialize(std::forward<Range>(range));
    auto state = std::make_shared<detail::TaskState<std::vector<R>>>(
        to_callback<std::vector<R>>(std::forward<Callback>(callback)),
        to_error_callback(std::forward<ErrorCallback>(error_callback)));
    if (items.empty()) {
      state->set_value({});
      return MapResult<R>(std::move(state));
    }
    if (chunksize == 0) chunksize = detail::default_chunksize(items.size(), processes());
    std::size_t chunks = (items.size() + chunksize - 1) / chunksize;
    auto sink = std::make_shared<detail::MapSink<R>>(state, items.size(), chunksize, chunks);
    std::vector<detail::PoolTask> tasks;
    tasks.reserve(chunks);
    typename Types::Func f(std::forward<F>(func));
    for (std::size_t chunk = 0; chunk < chunks; ++chunk) {
      auto first = items.begin() + static_cast<std::ptrdiff_t>(chunk * chunksize);
      auto last = items.begin() + static_cast<std::ptrdiff_t>(std::min(items.size(), (chunk + 1) * chunksize));
      std::vector<typename Types::Item> part(std::make_move_iterator(first), std::make_move_iterator(last));
      std::size_t size = part.size();
      tasks.push_back(detail::PoolTask{detail::encode_chunk<Star>(f, std::move(part)), sink, chunk, size});
    }
    detail::pool_submit(*core_, std::move(tasks));
    return MapResult<R>(std::move(state));
  }

  // map_async's result, which map() may move out of.
  template <class R>
  class MapResult : public AsyncResult<std::vector<R>> {
   public:
    explicit MapResult(std::shared_ptr<detail::TaskState<std::vector<R>>> state)
        : AsyncResult<std::vector<R>>(state), state_(std::move(state)) {}
    std::vector<R> take() { return state_->take_value(); }

   private:
    std::shared_ptr<detail::TaskState<std::vector<R>>> state_;
  };

  std::shared_ptr<detail::PoolCore> core_;
};

}  // namespace mproc
