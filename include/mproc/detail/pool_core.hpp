// mproc/detail/pool_core.hpp
//
// The untyped process pool under Pool and ProcessPoolExecutor: worker
// processes, the tasks they run, supervision. Tasks are encoded jobs (a
// Function that writes its result into an Encoder); outcomes go back to a
// TaskSink on the pool's result thread. Internal; the protocol is described
// in src/pool/pool_core.cpp.

#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/async_result.hpp"
#include "mproc/codec.hpp"
#include "mproc/detail/pool_interface.hpp"
#include "mproc/errors.hpp"
#include "mproc/function.hpp"
#include "mproc/imap.hpp"
#include "mproc/process.hpp"
#include "mproc/start_method.hpp"
#include "mproc/remote_exception.hpp"

namespace mproc::detail {

// What a job running in a worker writes its result into.
struct WorkerContext {
  Encoder& out;
  const std::string& process;  // the worker's name, for exceptions
};

// A job: runs in a worker and writes its result (the body the sink reads).
// An exception it lets out fails the whole task.
using PoolJob = Function<void(WorkerContext&)>;

// Describes the exception being handled (call inside a catch block) as
// thrown in `process`. mproc::exit() in a task is not an error of the task:
// it is let through, and ends the worker.
RemoteException capture_task_error(const std::string& process);

// The exception `error` describes, ready to store or rethrow.
std::exception_ptr remote_exception_ptr(const RemoteException& error);

// The type of what f(args...) returns, the way a job calls it.
template <class F, class... Args>
using CallResult = std::invoke_result_t<const F&, Args...>;

// Calls func(args...) once: Pool::apply_async. The body is the result.
template <class F, class... Args>
struct ApplyJob {
  F func{};
  mutable std::tuple<Args...> args;  // moved into the call: a job runs once

  void operator()(WorkerContext& context) const {
    if constexpr (std::is_void_v<CallResult<F, Args...>>) {
      std::apply(func, std::move(args));
    } else {
      context.out.write(std::apply(func, std::move(args)));
    }
  }

  template <class Archive>
  void serialize(Archive& archive) {
    archive(func, args);
  }
};

// Calls func on each item of a chunk: map, imap, starmap. The body is the
// values (default-constructed where the call threw), then the errors.
template <class F, class Item, bool Star>
struct ChunkJob {
  using Result = typename ItemResult<const F&, Item, Star>::type;

  F func{};
  mutable std::vector<Item> items;

  void operator()(WorkerContext& context) const {
    std::vector<Result> values(items.size());
    std::vector<std::pair<std::uint64_t, RemoteException>> errors;
    for (std::size_t i = 0; i < items.size(); ++i) {
      try {
        if constexpr (Star) {
          values[i] = std::apply(func, std::move(items[i]));
        } else {
          values[i] = std::invoke(func, std::move(items[i]));
        }
      } catch (...) {
        errors.emplace_back(i, capture_task_error(context.process));
      }
    }
    context.out.write(values);
    context.out.write(errors);
  }

  template <class Archive>
  void serialize(Archive& archive) {
    archive(func, items);
  }
};

// Receives the outcomes of tasks, on the pool's result thread (or on the
// thread that terminates the pool). Each task gets exactly one of deliver()
// and fail(), unless it was cancelled before it started.
class TaskSink {
 public:
  virtual ~TaskSink() = default;
  // The task's body (see the jobs above). May throw DecodeError.
  virtual void deliver(std::size_t index, Decoder& body) = 0;
  // The task failed as a whole: its job threw, its worker was lost, or the
  // pool was terminated or broke. `items`: how many items it had.
  virtual void fail(std::size_t index, std::size_t items, std::exception_ptr error) = 0;
  // The task goes to a worker: false if it was cancelled (it is dropped).
  virtual bool start(std::size_t /*index*/) { return true; }
  // The task will not run (an executor's shutdown with cancel_futures).
  virtual void cancel(std::size_t index, std::size_t items) {
    fail(index, items, std::make_exception_ptr(CancelledError("the task was cancelled")));
  }
};

// A task for the pool: an encoded job and where its outcome goes.
struct PoolTask {
  std::vector<std::byte> job;  // an encoded PoolJob, without fingerprint
  std::shared_ptr<TaskSink> sink;
  std::size_t index = 0;  // passed back to the sink
  std::size_t items = 1;
};

// Encodes `job` for a PoolTask: EncodeError or NotTransferableError here,
// in the submitting thread, before anything is submitted.
std::vector<std::byte> encode_job(const PoolJob& job);

struct PoolOptions {
  int processes = 0;                 // 0: cpu_count()
  std::shared_ptr<ProcessTarget> initializer;  // run in each worker before its first task
  std::size_t max_tasks_per_child = 0;  // 0: no limit
  std::string worker_name = "PoolWorker";  // "ForkPoolWorker-N" is made of it
  const char* owner = "Pool";  // for messages: "Pool" or "ProcessPoolExecutor"
  std::optional<StartMethod> start_method;  // empty: the default
};

class PoolCore;

// initializer(initargs...) as a pool's initializer: called in each forked
// worker, or sent to each spawn or forkserver worker (then it must be
// transferable: NotTransferableError when the pool starts).
template <class Init, class... InitArgs>
std::shared_ptr<ProcessTarget> make_initializer(Init&& initializer, std::tuple<InitArgs...> initargs) {
  return make_target<false>(std::forward<Init>(initializer), std::move(initargs));
}

// Starts the workers (all forked by the pool's supervisor thread, which
// lives as long as the pool: a worker's parent-death signal is tied to the
// thread that forked it).
std::shared_ptr<PoolCore> start_pool(PoolOptions options);

// Queues tasks (all, or none on error): UsageError once the pool is closed
// or terminated, BrokenProcessPool once it is broken. A stream's tasks
// (`from_stream`) are taken after close() too, until join().
void pool_submit(PoolCore& pool, std::vector<PoolTask> tasks);
void pool_submit(PoolCore& pool, PoolTask task, bool from_stream = false);

// An imap's stream whose input may still be read: after close() the
// workers stay until it has ended, and join() reads the rest of it.
void pool_add_stream(PoolCore& pool, std::weak_ptr<OpenInput> stream);
void pool_input_ended(PoolCore& pool);

// Python's close(): no new tasks; the workers leave once all are done.
void pool_close(PoolCore& pool);
// Python's terminate(): the workers are killed at once; tasks not done
// fail with BrokenProcessPool.
void pool_terminate(PoolCore& pool);
// Waits until the workers have left (after close or terminate: UsageError
// before), and the result thread has delivered everything. False if
// `timeout` passed first.
bool pool_join(PoolCore& pool, std::optional<std::chrono::nanoseconds> timeout);
// Cancels the tasks not yet handed to a worker (executor's cancel_futures).
void pool_cancel_pending(PoolCore& pool);

int pool_processes(const PoolCore& pool) noexcept;
// The pids of the live workers, for tests and tools.
std::vector<int> pool_worker_pids(const PoolCore& pool);
// Whether the pool still takes tasks.
bool pool_running(const PoolCore& pool);
// Whether this thread is the pool's result thread (in a callback), where
// the pool cannot be joined.
bool pool_on_result_thread(const PoolCore& pool);

// What Pool's destructor does, and the executor's: terminate (or close and
// wait) and join, except on the result thread, where the last reference
// going away tears the pool down once the callback returns.
inline void pool_finish(const std::shared_ptr<PoolCore>& pool, bool wait_for_tasks) {
  if (!pool) return;
  if (wait_for_tasks) {
    pool_close(*pool);
  } else {
    pool_terminate(*pool);
  }
  if (!pool_on_result_thread(*pool)) pool_join(*pool, std::nullopt);
}

// The typed sinks of the templates.

// One result: apply_async, submit.
template <class R>
class ResultSink final : public TaskSink {
 public:
  explicit ResultSink(std::shared_ptr<TaskState<R>> state) : state_(std::move(state)) {}

  void deliver(std::size_t, Decoder& body) override {
    Stored<R> value{};
    if constexpr (!std::is_void_v<R>) body.read(value);
    if (body.remaining() != 0) body.fail("bytes left over after a task's result");
    state_->set_value(std::move(value));
  }
  void fail(std::size_t, std::size_t, std::exception_ptr error) override { state_->set_error(std::move(error)); }
  bool start(std::size_t) override { return state_->mark_running(); }
  void cancel(std::size_t, std::size_t) override {
    if (!state_->cancel()) state_->set_error(std::make_exception_ptr(CancelledError("the task was cancelled")));
  }

 private:
  std::shared_ptr<TaskState<R>> state_;
};

// Reads a chunk's body: the values and the errors of the calls that threw.
template <class R>
void read_chunk_body(Decoder& body, std::vector<R>& values, std::vector<std::pair<std::uint64_t, RemoteException>>& errors) {
  body.read(values);
  body.read(errors);
  if (body.remaining() != 0) body.fail("bytes left over after a chunk's results");
}

}  // namespace mproc::detail
