// mproc/async_result.hpp
//
// AsyncResult<R>: the result of a task handed to a Pool or ThreadPool
// (Python's multiprocessing.pool.AsyncResult), and the shared state behind
// it and behind Future<R> (mproc/futures.hpp).
//
//   mproc::Pool pool(2);
//   mproc::AsyncResult<int> r = pool.apply_async(square, 7);
//   r.wait();
//   if (r.successful()) std::printf("%d\n", r.get());  // 49
//
// get() rethrows the task's exception: its own type for standard and
// registered types, RemoteError otherwise (see mproc/remote_exception.hpp).

#pragma once

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "mproc/errors.hpp"
#include "mproc/timeout.hpp"

namespace mproc {

namespace detail {

// What a task's state holds for a result of type R (nothing for void).
template <class R>
using Stored = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

enum class TaskStatus { pending, running, finished, cancelled };

// Reports an exception thrown by a user's callback, which has nowhere else
// to go (Python prints those too), and carries on.
void report_callback_error(const char* what) noexcept;

// The part of a task's state that does not depend on the result type: its
// status, its error, the threads waiting for it and the callbacks to run.
class TaskStateBase {
 public:
  virtual ~TaskStateBase() = default;

  TaskStatus status() const {
    std::lock_guard lock(mutex_);
    return status_;
  }
  bool done() const {
    std::lock_guard lock(mutex_);
    return is_done();
  }

  // Waits until done; with a timeout, returns whether it is done.
  void wait() const {
    std::unique_lock lock(mutex_);
    done_cv_.wait(lock, [&] { return is_done(); });
  }
  bool wait_for(std::optional<std::chrono::nanoseconds> timeout) const {
    if (!timeout) {
      wait();
      return true;
    }
    std::unique_lock lock(mutex_);
    return done_cv_.wait_for(lock, *timeout, [&] { return is_done(); });
  }

  // pending -> running, when a worker gets the task; false if it was
  // cancelled (the task must then not run).
  bool mark_running() {
    std::lock_guard lock(mutex_);
    if (status_ != TaskStatus::pending) return status_ == TaskStatus::running;
    status_ = TaskStatus::running;
    return true;
  }

  // pending -> cancelled; true if it is cancelled now (or was already).
  bool cancel() {
    {
      std::lock_guard lock(mutex_);
      if (status_ == TaskStatus::cancelled) return true;
      if (status_ != TaskStatus::pending || completing_) return false;
      status_ = TaskStatus::cancelled;
      error_ = std::make_exception_ptr(CancelledError("the task was cancelled"));
    }
    complete();
    return true;
  }

  // The error of a failed or cancelled task (null otherwise).
  std::exception_ptr error() const {
    std::lock_guard lock(mutex_);
    return error_;
  }

  // Runs `callback` once the task is done, on the thread that completes it,
  // or at once on this thread if it is done already.
  void add_done_callback(std::function<void()> callback) {
    {
      std::lock_guard lock(mutex_);
      if (!is_done()) {
        done_callbacks_.push_back(std::move(callback));
        return;
      }
    }
    run_callback(callback);
  }

  // Fails the task (unless it is done already); returns whether it did.
  bool set_error(std::exception_ptr error) {
    {
      std::lock_guard lock(mutex_);
      if (is_done() || completing_) return false;
      completing_ = true;
      error_ = std::move(error);
    }
    run_result_callback(false);
    mark_finished();
    return true;
  }

 protected:
  bool is_done() const { return status_ == TaskStatus::finished || status_ == TaskStatus::cancelled; }

  // Takes the right to complete the task; false if someone has it.
  bool begin_completion() {
    std::lock_guard lock(mutex_);
    if (is_done() || completing_) return false;
    completing_ = true;
    return true;
  }

  // The callback given with the task (Pool's callback / error_callback):
  // it runs before waiters are released, as Python's does.
  virtual void run_result_callback(bool success) = 0;

  void mark_finished() {
    {
      std::lock_guard lock(mutex_);
      status_ = TaskStatus::finished;
    }
    complete();
  }

  static void run_callback(const std::function<void()>& callback) noexcept {
    try {
      callback();
    } catch (const std::exception& error) {
      report_callback_error(error.what());
    } catch (...) {
      report_callback_error("an exception not derived from std::exception");
    }
  }

  mutable std::mutex mutex_;
  std::exception_ptr error_;  // guarded by mutex_

 private:
  void complete() {
    std::vector<std::function<void()>> callbacks;
    {
      std::lock_guard lock(mutex_);
      callbacks.swap(done_callbacks_);
    }
    done_cv_.notify_all();
    for (auto& callback : callbacks) run_callback(callback);
  }

  mutable std::condition_variable done_cv_;
  TaskStatus status_ = TaskStatus::pending;
  bool completing_ = false;
  std::vector<std::function<void()>> done_callbacks_;
};

// The state a task shares with whatever runs it: the status and the result
// or error, set once.
template <class R>
class TaskState final : public TaskStateBase {
 public:
  using Value = Stored<R>;
  using Callback = std::function<void(const Value&)>;
  using ErrorCallback = std::function<void(std::exception_ptr)>;

  TaskState() = default;
  TaskState(Callback callback, ErrorCallback error_callback)
      : callback_(std::move(callback)), error_callback_(std::move(error_callback)) {}

  // Sets the result (unless the task is done already); returns whether it did.
  bool set_value(Value value) {
    if (!begin_completion()) return false;
    {
      std::lock_guard lock(mutex_);
      value_.emplace(std::move(value));
    }
    run_result_callback(true);
    mark_finished();
    return true;
  }

  // The result once done; throws the task's error instead if it failed.
  const Value& value() const {
    wait();
    std::lock_guard lock(mutex_);
    if (!value_) std::rethrow_exception(error_);
    return *value_;
  }
  Value take_value() {
    wait();
    std::lock_guard lock(mutex_);
    if (!value_) std::rethrow_exception(error_);
    return std::move(*value_);
  }
  bool has_value() const {
    std::lock_guard lock(mutex_);
    return value_.has_value();
  }

 private:
  void run_result_callback(bool success) override {
    if (success && callback_) {
      run_callback([&] { callback_(*value_); });
    } else if (!success && error_callback_) {
      std::exception_ptr error = TaskStateBase::error();
      run_callback([&] { error_callback_(error); });
    }
  }

  std::optional<Value> value_;
  Callback callback_;
  ErrorCallback error_callback_;
};

}  // namespace detail

// AsyncResult<R>
//
// A handle to the result of an asynchronous task; copies share it.
template <class R>
class AsyncResult {
 public:
  explicit AsyncResult(std::shared_ptr<detail::TaskState<R>> state) : state_(std::move(state)) {}

  // AsyncResult::get()
  //
  // Waits for the result and returns it (a copy: get() may be called again;
  // a result that cannot be copied, a ThreadPool's std::unique_ptr say, is
  // moved out by the first get()), or throws the task's exception. With a
  // timeout, throws TimeoutError if the result is not ready by then (the
  // task goes on).
  R get() const {
    if constexpr (std::is_void_v<R>) {
      state_->value();
    } else if constexpr (std::is_copy_constructible_v<R>) {
      return state_->value();
    } else {
      return state_->take_value();
    }
  }
  template <class Rep, class Period>
  R get(std::chrono::duration<Rep, Period> timeout) const {
    if (!state_->wait_for(detail::to_timeout(timeout))) throw TimeoutError("the result was not ready in time");
    return get();
  }

  // AsyncResult::wait()
  //
  // Waits until the result is ready; with a timeout, at most that long, and
  // returns whether it is ready (Python's returns None).
  void wait() const { state_->wait(); }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return state_->wait_for(detail::to_timeout(timeout));
  }

  // AsyncResult::ready()
  //
  // Whether the task has finished (or failed).
  bool ready() const { return state_->done(); }

  // AsyncResult::successful()
  //
  // Whether the task finished without an exception. UsageError before it is
  // ready (Python's ValueError).
  bool successful() const {
    if (!ready()) throw UsageError("AsyncResult::successful(): the result is not ready");
    return state_->has_value();
  }

 private:
  std::shared_ptr<detail::TaskState<R>> state_;
};

}  // namespace mproc
