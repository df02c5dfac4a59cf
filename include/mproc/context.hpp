// mproc/context.hpp
//
// Context: Python's multiprocessing context, an object with the module's
// API bound to one start method, so that one program can mix methods.
//
// Example:
//
//   void work(mproc::Queue<std::string> out) { out.put(mproc::current_process().name()); }
//
//   auto ctx = mproc::get_context("spawn");
//   auto queue = ctx.Queue<std::string>();
//   auto p = ctx.Process(work, queue);  // "SpawnProcess-1"
//   p.start();
//   queue.get();
//   p.join();
//
//   auto pool = ctx.Pool(2);  // workers "SpawnPoolWorker-N"
//
// Only Process and Pool depend on the method; the other factories make the
// same objects as their constructors (every handle works under every
// method), as in Python.

#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "mproc/array.hpp"
#include "mproc/barrier.hpp"
#include "mproc/condition.hpp"
#include "mproc/connection.hpp"
#include "mproc/event.hpp"
#include "mproc/lock.hpp"
#include "mproc/pool.hpp"
#include "mproc/process.hpp"
#include "mproc/queue.hpp"
#include "mproc/semaphore.hpp"
#include "mproc/start_method.hpp"
#include "mproc/value.hpp"

namespace mproc {

// Context
//
// A start method and the factories that use it. Cheap to copy. Converts to
// its StartMethod, so that it can be passed where Python passes a context:
// Pool(n, nullptr, {}, 0, ctx), ProcessPoolExecutor(n, ctx).
class Context {
 public:
  explicit Context(StartMethod method) noexcept : method_(method) {}

  // Context::get_start_method(), Context::start_method()
  //
  // This context's method, by name ("spawn") or as the enum.
  std::string get_start_method() const { return std::string(start_method_name(method_)); }
  StartMethod start_method() const noexcept { return method_; }
  operator StartMethod() const noexcept { return method_; }  // NOLINT: implicit, as Python's context= argument

  // Context::Process()
  //
  // A Process started with this context's method and named as Python names
  // them: "ForkProcess-N", "SpawnProcess-N", "ForkServerProcess-N".
  template <class F, class... Args>
    requires(!std::is_same_v<std::remove_cvref_t<F>, ProcessOptions> &&
             std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>)
  mproc::Process Process(F&& target, Args&&... args) const {
    return Process(ProcessOptions{}, std::forward<F>(target), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
  mproc::Process Process(ProcessOptions options, F&& target, Args&&... args) const {
    bool named = !options.name.empty();
    options.start_method = method_;
    mproc::Process process(std::move(options), std::forward<F>(target), std::forward<Args>(args)...);
    if (!named) process.set_name(std::string(detail::start_method_prefix(method_)) + process.name());
    return process;
  }

  // Context::Pool()
  //
  // Pool(processes, initializer, initargs, maxtasksperchild) with this
  // context's method: workers "ForkPoolWorker-N", "SpawnPoolWorker-N", ...
  mproc::Pool Pool(std::optional<int> processes = std::nullopt) const {
    return mproc::Pool(processes, nullptr, {}, 0, method_);
  }
  template <class Init, class... InitArgs>
  mproc::Pool Pool(std::optional<int> processes, Init&& initializer, std::tuple<InitArgs...> initargs = {},
                   std::size_t maxtasksperchild = 0) const {
    return mproc::Pool(processes, std::forward<Init>(initializer), std::move(initargs), maxtasksperchild, method_);
  }

  // The other factories of Python's context, the same under every method.
  template <class T>
  mproc::Queue<T> Queue(std::size_t maxsize = 0) const {
    return mproc::Queue<T>(maxsize);
  }
  template <class T>
  mproc::JoinableQueue<T> JoinableQueue(std::size_t maxsize = 0) const {
    return mproc::JoinableQueue<T>(maxsize);
  }
  template <class T>
  mproc::SimpleQueue<T> SimpleQueue() const {
    return mproc::SimpleQueue<T>();
  }
  std::pair<Connection, Connection> Pipe(bool duplex = true) const { return mproc::Pipe(duplex); }
  mproc::Lock Lock() const { return mproc::Lock(); }
  mproc::RLock RLock() const { return mproc::RLock(); }
  mproc::Condition Condition() const { return mproc::Condition(); }
  mproc::Condition Condition(mproc::Lock lock) const { return mproc::Condition(std::move(lock)); }
  mproc::Condition Condition(mproc::RLock lock) const { return mproc::Condition(std::move(lock)); }
  mproc::Semaphore Semaphore(int value = 1) const { return mproc::Semaphore(value); }
  mproc::BoundedSemaphore BoundedSemaphore(int value = 1) const { return mproc::BoundedSemaphore(value); }
  mproc::Event Event() const { return mproc::Event(); }
  mproc::Barrier Barrier(int parties, Function<void()> action = nullptr) const {
    return mproc::Barrier(parties, std::move(action));
  }
  template <class T, class... A>
  mproc::Value<T> Value(A&&... args) const {
    return mproc::Value<T>(std::forward<A>(args)...);
  }
  template <class T, class... A>
  mproc::RawValue<T> RawValue(A&&... args) const {
    return mproc::RawValue<T>(std::forward<A>(args)...);
  }
  template <class T, class... A>
  mproc::Array<T> Array(A&&... args) const {
    return mproc::Array<T>(std::forward<A>(args)...);
  }
  template <class T>
  mproc::Array<T> Array(std::initializer_list<T> values) const {
    return mproc::Array<T>(values);
  }
  template <class T, class... A>
  mproc::RawArray<T> RawArray(A&&... args) const {
    return mproc::RawArray<T>(std::forward<A>(args)...);
  }
  template <class T>
  mproc::RawArray<T> RawArray(std::initializer_list<T> values) const {
    return mproc::RawArray<T>(values);
  }

  // The module-level functions, for code written against a context.
  int cpu_count() const { return mproc::cpu_count(); }
  mproc::Process current_process() const { return mproc::current_process(); }
  std::optional<mproc::Process> parent_process() const { return mproc::parent_process(); }
  std::vector<mproc::Process> active_children() const { return mproc::active_children(); }

 private:
  StartMethod method_;
};

// get_context()
//
// The context of method `name` ("fork", "spawn", "forkserver";
// std::invalid_argument otherwise). Empty: the default method's context,
// which fixes the default (a later set_start_method() without force is a
// UsageError), as in Python.
Context get_context(std::string_view name = {});

}  // namespace mproc
