// mproc/futures.hpp
//
// concurrent.futures for processes: ProcessPoolExecutor, Future<R>,
// as_completed() and wait().
//
//   mproc::ProcessPoolExecutor executor(2);
//   mproc::Future<int> f = executor.submit(square, 7);
//   std::printf("%d\n", f.result());  // 49
//   for (int s : executor.map(square, std::views::iota(0, 100))) ...
//
// The executor runs on the same supervised workers as Pool (see
// mproc/pool.hpp): functions travel by reference, arguments and results
// through the codec. One difference from CPython, on purpose: a worker that
// dies fails only the future it was running, with WorkerLostError, and is
// replaced; CPython breaks the whole executor. WorkerLostError derives from
// BrokenProcessPool, so code written for CPython still catches it. A failing
// initializer does break the executor, as in CPython: every pending future
// and every later submit() fails with BrokenProcessPool.

#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/async_result.hpp"
#include "mproc/detail/pool_core.hpp"
#include "mproc/errors.hpp"
#include "mproc/imap.hpp"
#include "mproc/pool.hpp"
#include "mproc/timeout.hpp"

namespace mproc {

// Future<R>
//
// The result of a call submitted to an executor; copies share it.
template <class R>
class Future {
 public:
  explicit Future(std::shared_ptr<detail::TaskState<R>> state) : state_(std::move(state)) {}

  // Future::result()
  //
  // Waits for the call and returns its result, or throws its exception;
  // CancelledError if it was cancelled. With a timeout, TimeoutError if it is
  // not done by then.
  R result() const {
    if constexpr (std::is_void_v<R>) {
      state_->value();
    } else {
      return state_->value();
    }
  }
  template <class Rep, class Period>
  R result(std::chrono::duration<Rep, Period> timeout) const {
    if (!state_->wait_for(detail::to_timeout(timeout))) throw TimeoutError("the future was not done in time");
    return result();
  }

  // Future::exception()
  //
  // Waits for the call and returns its exception (null if it returned);
  // CancelledError if it was cancelled; TimeoutError after `timeout`.
  std::exception_ptr exception() const {
    state_->wait();
    return checked_exception();
  }
  template <class Rep, class Period>
  std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) const {
    if (!state_->wait_for(detail::to_timeout(timeout))) throw TimeoutError("the future was not done in time");
    return checked_exception();
  }

  // Future::done(), running(), cancelled()
  //
  // Whether it finished or was cancelled; whether a worker has it (handed
  // to a worker counts as running, as in CPython); whether it was cancelled.
  bool done() const { return state_->done(); }
  bool running() const { return state_->status() == detail::TaskStatus::running; }
  bool cancelled() const { return state_->status() == detail::TaskStatus::cancelled; }

  // Future::cancel()
  //
  // Cancels the call if no worker has it yet; returns whether it is cancelled.
  bool cancel() { return state_->cancel(); }

  // Future::add_done_callback()
  //
  // Calls callback(future) once it is done: on the executor's result thread,
  // or at once on this thread if it is done already. An exception the
  // callback throws is reported on stderr and ignored.
  template <class Callback>
    requires std::is_invocable_v<Callback&, const Future&>
  void add_done_callback(Callback callback) {
    state_->add_done_callback([callback = std::move(callback), self = *this]() mutable { callback(self); });
  }

  bool operator==(const Future& other) const noexcept { return state_ == other.state_; }

  // For as_completed() and wait().
  const std::shared_ptr<detail::TaskState<R>>& state() const noexcept { return state_; }

 private:
  std::exception_ptr checked_exception() const {
    if (cancelled()) throw CancelledError("the future was cancelled");
    return state_->has_value() ? nullptr : state_->error();
  }

  std::shared_ptr<detail::TaskState<R>> state_;
};

// ReturnWhen
//
// When wait() returns: concurrent.futures' FIRST_COMPLETED, FIRST_EXCEPTION
// and ALL_COMPLETED.
enum class ReturnWhen { FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED };
inline constexpr ReturnWhen FIRST_COMPLETED = ReturnWhen::FIRST_COMPLETED;
inline constexpr ReturnWhen FIRST_EXCEPTION = ReturnWhen::FIRST_EXCEPTION;
inline constexpr ReturnWhen ALL_COMPLETED = ReturnWhen::ALL_COMPLETED;

namespace detail {

// Learns which of a set of futures are done, in the order they finish.
class CompletionWatch : public std::enable_shared_from_this<CompletionWatch> {
 public:
  template <class R>
  static std::shared_ptr<CompletionWatch> watch(const std::vector<Future<R>>& futures) {
    auto watch = std::make_shared<CompletionWatch>();
    for (std::size_t i = 0; i < futures.size(); ++i) {
      futures[i].state()->add_done_callback([watch, i] { watch->finished(i); });
    }
    return watch;
  }

  // Waits until `count` futures are done (or `deadline`); returns how many are.
  std::size_t wait_for_count(std::size_t count, std::optional<std::chrono::steady_clock::time_point> deadline) {
    std::unique_lock lock(mutex_);
    auto enough = [&] { return order_.size() >= count; };
    if (deadline) {
      cv_.wait_until(lock, *deadline, enough);
    } else {
      cv_.wait(lock, enough);
    }
    return order_.size();
  }

  // The index of the n-th future to finish (n < the count waited for).
  std::size_t nth(std::size_t n) {
    std::lock_guard lock(mutex_);
    return order_[n];
  }

 private:
  void finished(std::size_t index) {
    {
      std::lock_guard lock(mutex_);
      order_.push_back(index);
    }
    cv_.notify_all();
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::size_t> order_;
};

// The futures without duplicates, in their first order.
template <class R>
std::vector<Future<R>> distinct(const std::vector<Future<R>>& futures) {
  std::vector<Future<R>> unique;
  for (const Future<R>& future : futures) {
    bool seen = false;
    for (const Future<R>& kept : unique) seen = seen || kept == future;
    if (!seen) unique.push_back(future);
  }
  return unique;
}

}  // namespace detail

// DoneAndNotDone
//
// What wait() returns (Python's named tuple of two sets).
template <class R>
struct DoneAndNotDone {
  std::vector<Future<R>> done;
  std::vector<Future<R>> not_done;
};

// wait()
//
// Waits until `return_when` holds for `futures` (or `timeout` passes), and
// returns those done and those not. FIRST_EXCEPTION returns when one
// finishes with an exception, or when all are done.
template <class R>
DoneAndNotDone<R> wait(const std::vector<Future<R>>& futures, std::optional<std::chrono::nanoseconds> timeout = std::nullopt,
                       ReturnWhen return_when = ALL_COMPLETED) {
  std::vector<Future<R>> unique = detail::distinct(futures);
  auto watch = detail::CompletionWatch::watch(unique);
  auto deadline = detail::deadline_after(timeout);
  std::size_t count = 0;
  if (return_when == FIRST_COMPLETED) {
    count = watch->wait_for_count(std::min<std::size_t>(1, unique.size()), deadline);
  } else if (return_when == FIRST_EXCEPTION) {
    for (;;) {
      std::size_t seen = count;
      count = watch->wait_for_count(count + 1 > unique.size() ? unique.size() : count + 1, deadline);
      bool failed = false;
      for (std::size_t n = seen; n < count; ++n) {
        const Future<R>& future = unique[watch->nth(n)];
        failed = failed || (!future.cancelled() && !future.state()->has_value());
      }
      if (failed || count == unique.size() || count == seen) break;
    }
  } else {
    count = watch->wait_for_count(unique.size(), deadline);
  }
  DoneAndNotDone<R> result;
  for (const Future<R>& future : unique) (future.done() ? result.done : result.not_done).push_back(future);
  return result;
}
template <class R, class Rep, class Period>
DoneAndNotDone<R> wait(const std::vector<Future<R>>& futures, std::chrono::duration<Rep, Period> timeout,
                       ReturnWhen return_when = ALL_COMPLETED) {
  return wait(futures, detail::to_timeout(timeout), return_when);
}
template <class R>
DoneAndNotDone<R> wait(const std::vector<Future<R>>& futures, ReturnWhen return_when) {
  return wait(futures, std::nullopt, return_when);
}

// AsCompleted<R>
//
// What as_completed() returns: an input range of the futures, each once, in
// the order they finish (those done already first). Advancing past the last
// one done throws TimeoutError once the timeout has passed.
template <class R>
class AsCompleted {
 public:
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Future<R>;
    using difference_type = std::ptrdiff_t;
    using reference = const Future<R>&;

    iterator() = default;
    reference operator*() const { return owner_->current(); }
    iterator& operator++() {
      owner_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.at_end(); }

   private:
    friend class AsCompleted;
    bool at_end() const { return owner_->at_end(); }
    explicit iterator(AsCompleted* owner) : owner_(owner) {}
    AsCompleted* owner_ = nullptr;
  };

  AsCompleted(std::vector<Future<R>> futures, std::optional<std::chrono::nanoseconds> timeout)
      : futures_(detail::distinct(futures)),
        watch_(detail::CompletionWatch::watch(futures_)),
        deadline_(detail::deadline_after(timeout)) {}

  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

 private:
  friend class iterator;
  bool at_end() const { return next_ == futures_.size(); }
  const Future<R>& current() {
    if (at_end()) throw UsageError("as_completed: no more futures");
    if (watch_->wait_for_count(next_ + 1, deadline_) <= next_) {
      throw TimeoutError("as_completed: " + std::to_string(futures_.size() - next_) + " of " +
                         std::to_string(futures_.size()) + " futures unfinished");
    }
    return futures_[watch_->nth(next_)];
  }
  void advance() {
    current();
    ++next_;
  }

  std::vector<Future<R>> futures_;
  std::shared_ptr<detail::CompletionWatch> watch_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  std::size_t next_ = 0;
};

// as_completed()
//
// Iterates over `futures` as they finish (see AsCompleted).
template <class R>
AsCompleted<R> as_completed(std::vector<Future<R>> futures, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) {
  return AsCompleted<R>(std::move(futures), timeout);
}
template <class R, class Rep, class Period>
AsCompleted<R> as_completed(std::vector<Future<R>> futures, std::chrono::duration<Rep, Period> timeout) {
  return AsCompleted<R>(std::move(futures), detail::to_timeout(timeout));
}

// ProcessPoolExecutor
//
// concurrent.futures.ProcessPoolExecutor: `max_workers` processes (default:
// cpu_count()) started with the `mp_context` start method (default: the
// default one; a Context converts to its method), each running
// initializer(initargs...) first and replaced after `max_tasks_per_child`
// calls (0: never). Workers are named "ForkProcess-N" ("SpawnProcess-N",
// "ForkServerProcess-N"), as CPython's. Under spawn and forkserver the
// initializer must be transferable. The destructor is shutdown(true), as
// leaving Python's `with` block.
class ProcessPoolExecutor {
 public:
  explicit ProcessPoolExecutor(std::optional<int> max_workers = std::nullopt)
      : ProcessPoolExecutor(max_workers, std::nullopt, nullptr) {}
  template <class Init, class... InitArgs>
    requires std::is_invocable_v<std::decay_t<Init>&, InitArgs&...>
  ProcessPoolExecutor(std::optional<int> max_workers, Init&& initializer, std::tuple<InitArgs...> initargs = {},
                      std::size_t max_tasks_per_child = 0)
      : ProcessPoolExecutor(max_workers, std::nullopt, std::forward<Init>(initializer), std::move(initargs),
                            max_tasks_per_child) {}
  ProcessPoolExecutor(std::optional<int> max_workers, std::nullptr_t, std::tuple<> = {},
                      std::size_t max_tasks_per_child = 0)
      : ProcessPoolExecutor(max_workers, std::nullopt, nullptr, {}, max_tasks_per_child) {}

  // With a start method, in Python's order (max_workers, mp_context,
  // initializer, initargs, max_tasks_per_child).
  ProcessPoolExecutor(std::optional<int> max_workers, std::optional<StartMethod> mp_context,
                      std::nullptr_t = nullptr, std::tuple<> = {}, std::size_t max_tasks_per_child = 0)
      : ProcessPoolExecutor(max_workers, std::shared_ptr<detail::ProcessTarget>(), max_tasks_per_child, mp_context) {}
  template <class Init, class... InitArgs>
    requires std::is_invocable_v<std::decay_t<Init>&, InitArgs&...>
  ProcessPoolExecutor(std::optional<int> max_workers, std::optional<StartMethod> mp_context, Init&& initializer,
                      std::tuple<InitArgs...> initargs = {}, std::size_t max_tasks_per_child = 0)
      : ProcessPoolExecutor(max_workers, detail::make_initializer(std::forward<Init>(initializer), std::move(initargs)),
                            max_tasks_per_child, mp_context) {}

  ProcessPoolExecutor(const ProcessPoolExecutor&) = delete;
  ProcessPoolExecutor& operator=(const ProcessPoolExecutor&) = delete;
  ProcessPoolExecutor(ProcessPoolExecutor&&) noexcept = default;
  // Shuts this executor down as the destructor does, then takes `other`'s.
  ProcessPoolExecutor& operator=(ProcessPoolExecutor&& other) noexcept {
    if (this != &other) {
      detail::pool_finish(core_, true);
      core_ = std::move(other.core_);
    }
    return *this;
  }
  // shutdown(true), as leaving Python's `with` block (in a callback on the
  // executor's own result thread, the workers are stopped instead: waiting
  // there would wait for itself).
  ~ProcessPoolExecutor() { detail::pool_finish(core_, true); }

  // ProcessPoolExecutor::submit()
  //
  // Schedules func(args...); UsageError after shutdown() (CPython's
  // RuntimeError), BrokenProcessPool once the executor is broken.
  template <class F, class... Args>
  auto submit(F&& func, Args&&... args) {
    using Func = std::decay_t<F>;
    using R = detail::CallResult<Func, std::decay_t<Args>...>;
    detail::check_pool_call<Func, std::decay_t<Args>...>();
    auto state = std::make_shared<detail::TaskState<R>>();
    auto job = detail::encode_job(detail::PoolJob(detail::ApplyJob<Func, std::decay_t<Args>...>{
        std::forward<F>(func), std::make_tuple(std::forward<Args>(args)...)}));
    detail::pool_submit(*core(), detail::PoolTask{std::move(job), std::make_shared<detail::ResultSink<R>>(state), 0, 1});
    return Future<R>(std::move(state));
  }

  // ProcessPoolExecutor::map()
  //
  // func(item) for each item, as an input range of results in order (see
  // mproc/imap.hpp): the input is read lazily, a bounded number of chunks
  // ahead. Getting a result after `timeout` from this call throws
  // TimeoutError; a call's exception is thrown when its result is reached.
  template <class F, std::ranges::input_range Range>
  auto map(F&& func, Range&& range, std::optional<std::chrono::nanoseconds> timeout = std::nullopt,
           std::size_t chunksize = 1) {
    return detail::start_imap<false>(core(), std::forward<F>(func), std::forward<Range>(range), chunksize, true,
                                     detail::deadline_after(timeout));
  }
  template <class F, std::ranges::input_range Range, class Rep, class Period>
  auto map(F&& func, Range&& range, std::chrono::duration<Rep, Period> timeout, std::size_t chunksize = 1) {
    return map(std::forward<F>(func), std::forward<Range>(range), detail::to_timeout(timeout), chunksize);
  }

  // ProcessPoolExecutor::shutdown()
  //
  // No more submissions. cancel_futures: the calls no worker has yet are
  // cancelled. wait: returns once every call is done and the workers are
  // gone (otherwise at once; the destructor waits).
  void shutdown(bool wait = true, bool cancel_futures = false) {
    detail::pool_close(*core());
    if (cancel_futures) detail::pool_cancel_pending(*core_);
    if (wait) detail::pool_join(*core_, std::nullopt);
  }

  // ProcessPoolExecutor::worker_pids()
  //
  // The pids of the workers alive now.
  std::vector<int> worker_pids() const { return detail::pool_worker_pids(*core()); }

 private:
  ProcessPoolExecutor(std::optional<int> max_workers, std::shared_ptr<detail::ProcessTarget> initializer,
                      std::size_t max_tasks_per_child, std::optional<StartMethod> mp_context)
      : core_(detail::start_pool(detail::PoolOptions{check_workers(max_workers), std::move(initializer),
                                                     max_tasks_per_child, "Process", "ProcessPoolExecutor",
                                                     mp_context})) {}

  static int check_workers(std::optional<int> max_workers) {
    if (max_workers && *max_workers < 1) {
      throw std::invalid_argument("ProcessPoolExecutor: max_workers must be at least 1");
    }
    return max_workers.value_or(0);
  }

  const std::shared_ptr<detail::PoolCore>& core() const {
    if (!core_) throw UsageError("ProcessPoolExecutor: this executor was moved from");
    return core_;
  }

  std::shared_ptr<detail::PoolCore> core_;
};

}  // namespace mproc
