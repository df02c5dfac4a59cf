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
void thread_pool_submit(ThreadPoolCore& pool, std::vector<ThreadTask> tasks);
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

template <bool Star, class F, class Item>
struct ThreadItemResult {
  using type = std::invoke_result_t<F&, Item>;
};
template <class F, class Item>
struct ThreadItemResult<true, F, Item> {
  using type = decltype(std::apply(std::declval<F&>(), std::declval<Item>()));
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
    thread_pool_submit(*core_, std::move(task));
    return size;
  }

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
// The interface of Pool (mproc/pool.hpp), run by `processes` threads
// (default: cpu_count()).
class ThreadPool {
 public:
  ThreadPool() : ThreadPool(std::nullopt) {}
  explicit ThreadPool(std::optional<int> processes, std::function<void()> initializer = {})
      : core_(detail::start_thread_pool(check_processes(processes), std::move(initializer))) {}
  template <class Init, class... InitArgs>
    requires std::is_invocable_v<std::decay_t<Init>&, InitArgs&...>
  ThreadPool(std::optional<int> processes, Init&& initializer, std::tuple<InitArgs...> initargs)
      : ThreadPool(processes, std::function<void()>([init = std::decay_t<Init>(std::forward<Init>(initializer)),
                                                     args = std::move(initargs)]() mutable { std::apply(init, args); })) {}

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ThreadPool(ThreadPool&&) noexcept = default;
  ThreadPool& operator=(ThreadPool&&) noexcept = default;

  // As Pool's: terminate(), then join().
  ~ThreadPool() {
    if (!core_) return;
    detail::thread_pool_terminate(*core_);
    detail::thread_pool_join(*core_, std::nullopt);
  }

  template <class F, class... Args>
  auto apply(F&& func, Args&&... args) {
    return apply_async(std::forward<F>(func), std::forward<Args>(args)...).get();
  }

  template <class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>&, std::decay_t<Args>...>
  auto apply_async(F&& func, Args&&... args) {
    return apply_async(std::forward<F>(func), std::make_tuple(std::forward<Args>(args)...), nullptr, nullptr);
  }
  template <class F, class... Args, class Callback, class ErrorCallback = std::nullptr_t>
  auto apply_async(F&& func, std::tuple<Args...> args, Callback&& callback, ErrorCallback&& error_callback = nullptr) {
    using R = decltype(std::apply(std::declval<std::decay_t<F>&>(), std::move(args)));
    auto state = std::make_shared<detail::TaskState<R>>(to_callback<R>(std::forward<Callback>(callback)),
                                                       to_error_callback(std::forward<ErrorCallback>(error_callback)));
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

  template <class F, std::ranges::input_range Range>
  auto map(F&& func, Range&& range, std::size_t chunksize = 0) {
    return map_async(std::forward<F>(func), std::forward<Range>(range), chunksize).get();
  }
  template <class F, class T>
  auto map(F&& func, std::initializer_list<T> items, std::size_t chunksize = 0) {
    return map(std::forward<F>(func), std::vector<T>(items), chunksize);
  }
  template <class F, std::ranges::input_range Range, class Callback = std::nullptr_t, class ErrorCallback = std::nullptr_t>
  auto map_async(F&& func, Range&& range, std::size_t chunksize = 0, Callback&& callback = nullptr,
                 ErrorCallback&& error_callback = nullptr) {
    return start_map<false>(std::forward<F>(func), std::forward<Range>(range), chunksize,
                            std::forward<Callback>(callback), std::forward<ErrorCallback>(error_callback));
  }
  template <class F, std::ranges::input_range Range>
  auto starmap(F&& func, Range&& range, std::size_t chunksize = 0) {
    return starmap_async(std::forward<F>(func), std::forward<Range>(range), chunksize).get();
  }
  template <class F, std::ranges::input_range Range, class Callback = std::nullptr_t, class ErrorCallback = std::nullptr_t>
  auto starmap_async(F&& func, Range&& range, std::size_t chunksize = 0, Callback&& callback = nullptr,
                     ErrorCallback&& error_callback = nullptr) {
    return start_map<true>(std::forward<F>(func), std::forward<Range>(range), chunksize,
                           std::forward<Callback>(callback), std::forward<ErrorCallback>(error_callback));
  }

  template <class F, std::ranges::input_range Range>
  auto imap(F&& func, Range&& range, std::size_t chunksize = 1) {
    return start_imap(std::forward<F>(func), std::forward<Range>(range), chunksize, true);
  }
  template <class F, std::ranges::input_range Range>
  auto imap_unordered(F&& func, Range&& range, std::size_t chunksize = 1) {
    return start_imap(std::forward<F>(func), std::forward<Range>(range), chunksize, false);
  }

  void close() { detail::thread_pool_close(*core()); }
  void terminate() { detail::thread_pool_terminate(*core()); }
  void join() { detail::thread_pool_join(*core(), std::nullopt); }
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return detail::thread_pool_join(*core(), detail::to_timeout(timeout));
  }
  int processes() const { return detail::thread_pool_size(*core()); }

 private:
  static int check_processes(std::optional<int> processes) {
    if (processes && *processes < 1) throw std::invalid_argument("ThreadPool: the number of threads must be at least 1");
    return processes.value_or(0);
  }

  const std::shared_ptr<detail::ThreadPoolCore>& core() const {
    if (!core_) throw UsageError("ThreadPool: this pool was moved from");
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
    using Func = std::decay_t<F>;
    using Item = std::ranges::range_value_t<Range>;
    using R = typename detail::ThreadItemResult<Star, Func, Item>::type;
    static_assert(!std::is_void_v<R>, "map: the function must return a value (use apply_async for calls without one)");
    auto items = std::make_shared<std::vector<Item>>();
    for (auto&& item : range) items->push_back(static_cast<Item>(item));
    auto state = std::make_shared<detail::TaskState<std::vector<R>>>(
        to_callback<std::vector<R>>(std::forward<Callback>(callback)),
        to_error_callback(std::forward<ErrorCallback>(error_callback)));
    if (items->empty()) {
      state->set_value({});
      return AsyncResult<std::vector<R>>(std::move(state));
    }
    if (chunksize == 0) {
      std::size_t per = static_cast<std::size_t>(processes()) * 4;
      chunksize = items->size() / per + (items->size() % per != 0 ? 1 : 0);
    }
    std::size_t chunks = (items->size() + chunksize - 1) / chunksize;
    struct Shared {
      std::mutex mutex;
      std::vector<std::optional<R>> values;
      std::size_t remaining;
    };
    auto shared = std::make_shared<Shared>();
    shared->values.resize(items->size());
    shared->remaining = chunks;
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
        std::unique_lock lock(shared->mutex);
        if (--shared->remaining != 0) return;
        lock.unlock();
        std::vector<R> values;
        values.reserve(shared->values.size());
        for (auto& value : shared->values) values.push_back(std::move(*value));
        state->set_value(std::move(values));
      };
      tasks[chunk].fail = [state](std::exception_ptr error) { state->set_error(std::move(error)); };
    }
    detail::thread_pool_submit(*core(), std::move(tasks));
    return AsyncResult<std::vector<R>>(std::move(state));
  }

  template <class F, class Range>
  auto start_imap(F&& func, Range&& range, std::size_t chunksize, bool ordered) {
    using Func = std::decay_t<F>;
    using Item = std::ranges::range_value_t<Range>;
    using R = typename detail::ThreadItemResult<false, Func, Item>::type;
    if (chunksize == 0) throw std::invalid_argument("imap: chunksize must be at least 1");
    auto stream = std::make_shared<detail::ResultStream<R>>(ordered, detail::chunks_ahead(processes(), chunksize));
    auto view = std::views::all(std::forward<Range>(range));
    stream->set_feeder(std::make_unique<detail::ThreadFeeder<false, Func, decltype(view), R>>(
        core(), Func(std::forward<F>(func)), std::move(view), chunksize, stream));
    stream->top_up();
    return IMapIterator<R>(std::move(stream));
  }

  std::shared_ptr<detail::ThreadPoolCore> core_;
};

}  // namespace mproc
