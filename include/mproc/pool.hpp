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
#include "mproc/detail/pool_interface.hpp"
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
    auto stream = stream_.lock();
    if (!stream || !stream->deliver_quietly(index, std::move(outcome))) return;
    if (defer_wake) {
      defer_wake(std::move(stream));
    } else {
      stream->wake();
    }
  }
  void fail(std::size_t index, std::size_t items, std::exception_ptr error) override {
    if (auto stream = stream_.lock()) stream->fail(index, items, std::move(error));
  }

 private:
  std::weak_ptr<ResultStream<R>> stream_;
};

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
    pool_submit(*core_, PoolTask{encode_chunk<Star>(func_, std::move(items)), sink_, chunk, size}, true);
    return size;
  }
  void input_ended() override { pool_input_ended(*core_); }

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
  using Result = typename ItemResult<const Func&, Item, Star>::type;
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
  pool_add_stream(*core, stream);
  stream->top_up();
  return IMapIterator<R>(std::move(stream));
}

}  // namespace detail

// Pool
//
// Python's multiprocessing.Pool: apply, apply_async, map, map_async,
// starmap, starmap_async, imap, imap_unordered, close, terminate and join
// (see mproc/detail/pool_interface.hpp). Not copyable: one owner, as the
// `with` statement has one.
class Pool : public detail::PoolInterface<Pool> {
 public:
  // A pool of `processes` workers (default: cpu_count()), each running
  // initializer(initargs...) first, each replaced after
  // `maxtasksperchild` tasks (0: never), started with the `context` start
  // method (default: the default one; a Context converts to its method).
  // processes < 1 is std::invalid_argument (Python's ValueError). Under
  // fork the initializer may be any callable; under spawn and forkserver it
  // must be transferable (NotTransferableError here otherwise), and workers
  // are named "SpawnPoolWorker-N", "ForkServerPoolWorker-N".
  Pool() : Pool(std::nullopt) {}
  explicit Pool(std::optional<int> processes) : Pool(processes, nullptr) {}
  Pool(std::optional<int> processes, std::nullptr_t /*no initializer*/, std::tuple<> = {},
       std::size_t maxtasksperchild = 0, std::optional<StartMethod> context = std::nullopt)
      : Pool(processes, std::shared_ptr<detail::ProcessTarget>(), maxtasksperchild, context) {}
  template <class Init, class... InitArgs>
    requires std::is_invocable_v<std::decay_t<Init>&, InitArgs&...>
  Pool(std::optional<int> processes, Init&& initializer, std::tuple<InitArgs...> initargs = {},
       std::size_t maxtasksperchild = 0, std::optional<StartMethod> context = std::nullopt)
      : Pool(processes, detail::make_initializer(std::forward<Init>(initializer), std::move(initargs)),
             maxtasksperchild, context) {}

  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  Pool(Pool&&) noexcept = default;
  // Ends this pool as the destructor does, then takes `other`'s.
  Pool& operator=(Pool&& other) noexcept {
    if (this != &other) {
      detail::pool_finish(core_, false);
      core_ = std::move(other.core_);
    }
    return *this;
  }

  // Python's `with` exit: terminate(), then join() (in a callback on the
  // pool's own result thread, the join happens once the callback returns).
  ~Pool() { detail::pool_finish(core_, false); }

  // Pool::processes()
  //
  // The number of workers (Python's _processes).
  int processes() const { return detail::pool_processes(*core()); }

  // Pool::worker_pids()
  //
  // The pids of the workers alive now.
  std::vector<int> worker_pids() const { return detail::pool_worker_pids(*core()); }

 private:
  friend class detail::PoolInterface<Pool>;

  Pool(std::optional<int> processes, std::shared_ptr<detail::ProcessTarget> initializer,
       std::size_t maxtasksperchild, std::optional<StartMethod> context)
      : core_(detail::start_pool(detail::PoolOptions{check_processes(processes), std::move(initializer),
                                                     maxtasksperchild, "PoolWorker", "Pool", context})) {}

  static int check_processes(std::optional<int> processes) {
    if (processes && *processes < 1) throw std::invalid_argument("Pool: the number of processes must be at least 1");
    return processes.value_or(0);
  }

  const std::shared_ptr<detail::PoolCore>& core() const {
    if (!core_) throw UsageError("Pool: this pool was moved from");
    return core_;
  }

  template <class F, class... Args, class Callback, class ErrorCallback>
  auto submit_call(F&& func, std::tuple<Args...> args, Callback&& callback, ErrorCallback&& error_callback) {
    using Func = std::decay_t<F>;
    using R = detail::CallResult<Func, Args...>;
    detail::check_pool_call<Func, Args...>();
    auto state = std::make_shared<detail::TaskState<R>>(detail::make_callback<R>(std::forward<Callback>(callback)),
                                                       detail::make_error_callback(std::forward<ErrorCallback>(error_callback)));
    auto job = detail::encode_job(
        detail::PoolJob(detail::ApplyJob<Func, Args...>{std::forward<F>(func), std::move(args)}));
    detail::pool_submit(*core(), detail::PoolTask{std::move(job), std::make_shared<detail::ResultSink<R>>(state), 0, 1});
    return AsyncResult<R>(std::move(state));
  }

  template <bool Star, class F, class Range, class Callback, class ErrorCallback>
  auto start_map(F&& func, Range&& range, std::size_t chunksize, Callback&& callback, ErrorCallback&& error_callback) {
    using Types = detail::MapTypes<Star, F, Range>;
    using R = typename Types::Result;
    detail::check_pool_call<typename Types::Func, typename Types::Item>();
    auto items = detail::materialize(std::forward<Range>(range));
    auto state = std::make_shared<detail::TaskState<std::vector<R>>>(
        detail::make_callback<std::vector<R>>(std::forward<Callback>(callback)),
        detail::make_error_callback(std::forward<ErrorCallback>(error_callback)));
    if (items.empty()) {
      state->set_value({});
      return detail::MapResult<R>(std::move(state));
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
    return detail::MapResult<R>(std::move(state));
  }

  template <class F, class Range>
  auto start_imap(F&& func, Range&& range, std::size_t chunksize, bool ordered) {
    return detail::start_imap<false>(core(), std::forward<F>(func), std::forward<Range>(range), chunksize, ordered);
  }

  void close_pool() { detail::pool_close(*core()); }
  void terminate_pool() { detail::pool_terminate(*core()); }
  bool join_pool(std::optional<std::chrono::nanoseconds> timeout) { return detail::pool_join(*core(), timeout); }

  std::shared_ptr<detail::PoolCore> core_;
};

}  // namespace mproc
