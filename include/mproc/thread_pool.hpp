// mproc/thread_pool.hpp
//
// ThreadPool: Pool's interface with threads of this process
// (multiprocessing.pool.ThreadPool). Nothing is encoded: any callable
// (capturing lambdas, std::function) and any argument and result type work.
//
//   mproc::ThreadPool pool(4);
//   int base = 10;
//   auto sums = pool.map([base](int x) { return base + x; }, std::vector{1, 2, 3});
//
// Differences from Pool: callbacks run on the worker thread that finished
// the task (Python runs them on a result thread); terminate() cannot stop a
// task that is running: it fails the tasks not started yet, with
// BrokenProcessPool, and join() waits for the running ones.

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
#include "mproc/detail/pool_interface.hpp"
#include "mproc/errors.hpp"
#include "mproc/imap.hpp"
#include "mproc/timeout.hpp"

namespace mproc {

namespace detail {

// A task for a thread: what to run, and how to fail it if it never runs.
struct ThreadTask {
  std::function<void()> run;
  std::function<void(std::exception_ptr)> fail;
};

class ThreadPoolCore;

std::shared_ptr<ThreadPoolCore> start_thread_pool(int threads, std::function<void()> initializer);
// A stream's tasks (`from_stream`) are taken after close() too, until join().
void thread_pool_submit(ThreadPoolCore& pool, std::vector<ThreadTask> tasks, bool from_stream = false);
void thread_pool_add_stream(ThreadPoolCore& pool, std::weak_ptr<OpenInput> stream);
void thread_pool_input_ended(ThreadPoolCore& pool);
bool thread_pool_on_own_thread(const ThreadPoolCore& pool);
void thread_pool_close(ThreadPoolCore& pool);
void thread_pool_terminate(ThreadPoolCore& pool);
bool thread_pool_join(ThreadPoolCore& pool, std::optional<std::chrono::nanoseconds> timeout);
int thread_pool_size(const ThreadPoolCore& pool) noexcept;

// Calls func on the items of a chunk, catching each call's exception.
template <bool Star, class F, class Item, class R>
ChunkOutcome<R> run_chunk(F& func, std::vector<Item>& items) {
  ChunkOutcome<R> outcome;
  outcome.size = items.size();
  outcome.values.resize(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    try {
      if constexpr (Star) {
        outcome.values[i] = std::apply(func, std::move(items[i]));
      } else {
        outcome.values[i] = std::invoke(func, std::move(items[i]));
      }
    } catch (...) {
      outcome.errors.emplace_back(i, std::current_exception());
    }
  }
  return outcome;
}

// The results of a map's chunks as the threads make them.
template <class R>
struct ThreadMapState {
  ThreadMapState(std::size_t items, std::size_t chunks) : values(items), remaining(chunks) {}

  // Whether the chunk just done was the last.
  bool chunk_done() {
    std::lock_guard lock(mutex);
    return --remaining == 0;
  }
  std::vector<R> take() {
    std::vector<R> all;
    all.reserve(values.size());
    for (auto& value : values) all.push_back(std::move(*value));
    return all;
  }

  std::mutex mutex;
  std::vector<std::optional<R>> values;
  std::size_t remaining;
};

// Reads an imap's input a chunk at a time and hands it to the threads.
template <bool Star, class F, class View, class R>
class ThreadFeeder final : public ChunkFeeder {
 public:
  using Item = std::ranges::range_value_t<View>;

  ThreadFeeder(std::shared_ptr<ThreadPoolCore> core, F func, View view, std::size_t chunksize,
               std::weak_ptr<ResultStream<R>> stream)
      : core_(std::move(core)),
        func_(std::make_shared<F>(std::move(func))),
        view_(std::move(view)),
        chunksize_(chunksize),
        stream_(std::move(stream)) {}

  std::size_t feed(std::size_t chunk) override {
    if (!position_) position_.emplace(std::ranges::begin(view_));
    auto items = std::make_shared<std::vector<Item>>();
    while (items->size() < chunksize_ && *position_ != std::ranges::end(view_)) {
      items->push_back(static_cast<Item>(**position_));
      ++*position_;
    }
    std::size_t size = items->size();
    if (size == 0) return 0;
    std::vector<ThreadTask> task(1);
    task[0].run = [func = func_, items, stream = stream_, chunk] {
      auto outcome = run_chunk<Star, F, Item, R>(*func, *items);
      if (auto s = stream.lock()) s->deliver(chunk, std::move(outcome));
    };
    task[0].fail = [stream = stream_, chunk, size](std::exception_ptr error) {
      if (auto s = stream.lock()) s->fail(chunk, size, std::move(error));
    };
    thread_pool_submit(*core_, std::move(task), true);
    return size;
  }
  void input_ended() override { thread_pool_input_ended(*core_); }

 private:
  std::shared_ptr<ThreadPoolCore> core_;
  std::shared_ptr<F> func_;
  View view_;
  std::optional<std::ranges::iterator_t<View>> position_;
  std::size_t chunksize_;
  std::weak_ptr<ResultStream<R>> stream_;
};

}  // namespace detail

// ThreadPool
//
// The interface of Pool (mproc/detail/pool_interface.hpp), run by
// `processes` threads (default: cpu_count()), each running the initializer
// first.
class ThreadPool : public detail::PoolInterface<ThreadPool> {
 public:
  ThreadPool() : ThreadPool(std::nullopt) {}
  explicit ThreadPool(std::optional<int> processes, std::function<void()> initializer = {})
      : core_(detail::start_thread_pool(check_processes(processes), std::move(initializer))) {}
  template <class Init, class... InitArgs>
    requires std::is_invocable_v<std::decay_t<Init>&, InitArgs&...>
  ThreadPool(std::optional<int> processes, Init&& initializer, std::tuple<InitArgs...> initargs)
      : ThreadPool(processes, detail::bind_initializer(std::forward<Init>(initializer), std::move(initargs))) {}

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ThreadPool(ThreadPool&&) noexcept = default;

  // Ends this pool as the destructor does, then takes `other`'s.
  ThreadPool& operator=(ThreadPool&& other) noexcept {
    if (this != &other) {
      finish();
      core_ = std::move(other.core_);
    }
    return *this;
  }

  // As Pool's: terminate(), then join() (from one of its own tasks, the
  // threads leave, and the pool goes, once their tasks return).
  ~ThreadPool() { finish(); }

  // ThreadPool::processes()
  //
  // The number of threads.
  int processes() const { return detail::thread_pool_size(*core()); }

 private:
  friend class detail::PoolInterface<ThreadPool>;

  void finish() {
    if (!core_) return;
    detail::thread_pool_terminate(*core_);
    if (!detail::thread_pool_on_own_thread(*core_)) detail::thread_pool_join(*core_, std::nullopt);
  }

  static int check_processes(std::optional<int> processes) {
    if (processes && *processes < 1) throw std::invalid_argument("ThreadPool: the number of threads must be at least 1");
    return processes.value_or(0);
  }

  const std::shared_ptr<detail::ThreadPoolCore>& core() const {
    if (!core_) throw UsageError("ThreadPool: this pool was moved from");
    return core_;
  }

  template <class F, class... Args, class Callback, class ErrorCallback>
  auto submit_call(F&& func, std::tuple<Args...> args, Callback&& callback, ErrorCallback&& error_callback) {
    using R = decltype(std::apply(std::declval<std::decay_t<F>&>(), std::move(args)));
    auto state = std::make_shared<detail::TaskState<R>>(detail::make_callback<R>(std::forward<Callback>(callback)),
                                                       detail::make_error_callback(std::forward<ErrorCallback>(error_callback)));
    std::vector<detail::ThreadTask> task(1);
    task[0].run = [state, func = std::decay_t<F>(std::forward<F>(func)), args = std::move(args)]() mutable {
      try {
        if constexpr (std::is_void_v<R>) {
          std::apply(func, std::move(args));
          state->set_value(std::monostate{});
        } else {
          state->set_value(std::apply(func, std::move(args)));
        }
      } catch (...) {
        state->set_error(std::current_exception());
      }
    };
    task[0].fail = [state](std::exception_ptr error) { state->set_error(std::move(error)); };
    detail::thread_pool_submit(*core(), std::move(task));
    return AsyncResult<R>(std::move(state));
  }

  template <bool Star, class F, class Range, class Callback, class ErrorCallback>
  auto start_map(F&& func, Range&& range, std::size_t chunksize, Callback&& callback, ErrorCallback&& error_callback) {
    using Func = std::decay_t<F>;
    using Item = std::ranges::range_value_t<Range>;
    using R = typename detail::ItemResult<Func&, Item, Star>::type;
    static_assert(!std::is_void_v<R>, "map: the function must return a value (use apply_async for calls without one)");
    auto items = std::make_shared<std::vector<Item>>(detail::materialize(std::forward<Range>(range)));
    auto state = std::make_shared<detail::TaskState<std::vector<R>>>(
        detail::make_callback<std::vector<R>>(std::forward<Callback>(callback)),
        detail::make_error_callback(std::forward<ErrorCallback>(error_callback)));
    if (items->empty()) {
      state->set_value({});
      return detail::MapResult<R>(std::move(state));
    }
    if (chunksize == 0) chunksize = detail::default_chunksize(items->size(), processes());
    std::size_t chunks = (items->size() + chunksize - 1) / chunksize;
    auto shared = std::make_shared<detail::ThreadMapState<R>>(items->size(), chunks);
    auto f = std::make_shared<Func>(std::forward<F>(func));
    std::vector<detail::ThreadTask> tasks(chunks);
    for (std::size_t chunk = 0; chunk < chunks; ++chunk) {
      std::size_t first = chunk * chunksize;
      std::size_t last = std::min(items->size(), first + chunksize);
      tasks[chunk].run = [=] {
        try {
          for (std::size_t i = first; i < last; ++i) {
            if constexpr (Star) {
              shared->values[i].emplace(std::apply(*f, std::move((*items)[i])));
            } else {
              shared->values[i].emplace(std::invoke(*f, std::move((*items)[i])));
            }
          }
        } catch (...) {
          state->set_error(std::current_exception());
          return;
        }
        if (shared->chunk_done()) state->set_value(shared->take());
      };
      tasks[chunk].fail = [state](std::exception_ptr error) { state->set_error(std::move(error)); };
    }
    detail::thread_pool_submit(*core(), std::move(tasks));
    return detail::MapResult<R>(std::move(state));
  }

  template <class F, class Range>
  auto start_imap(F&& func, Range&& range, std::size_t chunksize, bool ordered) {
    using Func = std::decay_t<F>;
    using Item = std::ranges::range_value_t<Range>;
    using R = typename detail::ItemResult<Func&, Item, false>::type;
    if (chunksize == 0) throw std::invalid_argument("imap: chunksize must be at least 1");
    auto stream = std::make_shared<detail::ResultStream<R>>(ordered, detail::chunks_ahead(processes(), chunksize));
    auto view = std::views::all(std::forward<Range>(range));
    stream->set_feeder(std::make_unique<detail::ThreadFeeder<false, Func, decltype(view), R>>(
        core(), Func(std::forward<F>(func)), std::move(view), chunksize, stream));
    detail::thread_pool_add_stream(*core(), stream);
    stream->top_up();
    return IMapIterator<R>(std::move(stream));
  }

  void close_pool() { detail::thread_pool_close(*core()); }
  void terminate_pool() { detail::thread_pool_terminate(*core()); }
  bool join_pool(std::optional<std::chrono::nanoseconds> timeout) { return detail::thread_pool_join(*core(), timeout); }

  std::shared_ptr<detail::ThreadPoolCore> core_;
};

}  // namespace mproc
