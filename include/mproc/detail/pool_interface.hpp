// mproc/detail/pool_interface.hpp
//
// Python's Pool interface, shared by Pool (worker processes) and
// ThreadPool (threads): each supplies how a call, a map and an imap are
// started, and how it closes, terminates and joins.

#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "mproc/async_result.hpp"
#include "mproc/timeout.hpp"

namespace mproc::detail {

// A result callback as TaskState<R> keeps it (none for nullptr; a void
// call's callback takes no argument).
template <class R, class Callback>
typename TaskState<R>::Callback make_callback(Callback&& callback) {
  if constexpr (std::is_null_pointer_v<std::decay_t<Callback>>) {
    return {};
  } else if constexpr (std::is_void_v<R>) {
    return [cb = std::forward<Callback>(callback)](const std::monostate&) mutable { cb(); };
  } else {
    return typename TaskState<R>::Callback(std::forward<Callback>(callback));
  }
}
template <class ErrorCallback>
std::function<void(std::exception_ptr)> make_error_callback(ErrorCallback&& callback) {
  if constexpr (std::is_null_pointer_v<std::decay_t<ErrorCallback>>) {
    return {};
  } else {
    return std::function<void(std::exception_ptr)>(std::forward<ErrorCallback>(callback));
  }
}

// initializer(initargs...) as one callable.
template <class Init, class... InitArgs>
std::function<void()> bind_initializer(Init&& initializer, std::tuple<InitArgs...> initargs) {
  return [init = std::decay_t<Init>(std::forward<Init>(initializer)), args = std::move(initargs)]() mutable {
    std::apply(init, args);
  };
}

// The result type of calling `Callable` (a reference to the function
// object) on one item of a map (Star: starmap, the item is a tuple of
// arguments).
template <class Callable, class Item, bool Star>
struct ItemResult {
  using type = std::invoke_result_t<Callable, Item>;
};
template <class Callable, class Item>
struct ItemResult<Callable, Item, true> {
  using type = decltype(std::apply(std::declval<Callable>(), std::declval<Item>()));
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

// map_async's result, which map() moves the vector out of.
template <class R>
class MapResult : public AsyncResult<std::vector<R>> {
 public:
  explicit MapResult(std::shared_ptr<TaskState<std::vector<R>>> state)
      : AsyncResult<std::vector<R>>(state), state_(std::move(state)) {}
  std::vector<R> take() { return state_->take_value(); }

 private:
  std::shared_ptr<TaskState<std::vector<R>>> state_;
};

// PoolInterface<Derived>
//
// Derived provides submit_call(func, args_tuple, callback, error_callback)
// -> AsyncResult<R>, start_map<Star>(func, range, chunksize, callback,
// error_callback) -> MapResult<R>, start_imap(func, range, chunksize,
// ordered) -> IMapIterator<R>, and close_pool(), terminate_pool(),
// join_pool(timeout).
template <class Derived>
class PoolInterface {
 public:
  // apply()
  //
  // Runs func(args...) on a worker and returns its result (or throws its
  // exception).
  template <class F, class... Args>
  auto apply(F&& func, Args&&... args) {
    return apply_async(std::forward<F>(func), std::forward<Args>(args)...).get();
  }

  // apply_async()
  //
  // Runs func(args...) on a worker; the AsyncResult gives its result. With
  // callbacks, `callback(result)` or `error_callback(exception)` runs once,
  // in this process, before the result is ready (keep them short: results
  // behind them wait).
  template <class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>&, std::decay_t<Args>...>
  auto apply_async(F&& func, Args&&... args) {
    return derived().submit_call(std::forward<F>(func), std::make_tuple(std::forward<Args>(args)...), nullptr,
                                 nullptr);
  }
  template <class F, class... Args, class Callback, class ErrorCallback = std::nullptr_t>
  auto apply_async(F&& func, std::tuple<Args...> args, Callback&& callback, ErrorCallback&& error_callback = nullptr) {
    return derived().submit_call(std::forward<F>(func), std::move(args), std::forward<Callback>(callback),
                                 std::forward<ErrorCallback>(error_callback));
  }

  // map()
  //
  // func(item) for each item of `range`, in order; blocks until all are
  // done. The range is read whole first and cut into chunks of `chunksize`
  // items (0: Python's default, about four chunks per worker); each chunk
  // is one task. Throws the first exception a call threw (in the order they
  // finish; the other chunks still run).
  template <class F, std::ranges::input_range Range>
  auto map(F&& func, Range&& range, std::size_t chunksize = 0) {
    return map_async(std::forward<F>(func), std::forward<Range>(range), chunksize).take();
  }
  template <class F, class T>
  auto map(F&& func, std::initializer_list<T> items, std::size_t chunksize = 0) {
    return map(std::forward<F>(func), std::vector<T>(items), chunksize);
  }

  // map_async()
  //
  // map() that returns at once; `callback` gets the whole vector.
  template <class F, std::ranges::input_range Range, class Callback = std::nullptr_t,
            class ErrorCallback = std::nullptr_t>
  auto map_async(F&& func, Range&& range, std::size_t chunksize = 0, Callback&& callback = nullptr,
                 ErrorCallback&& error_callback = nullptr) {
    return derived().template start_map<false>(std::forward<F>(func), std::forward<Range>(range), chunksize,
                                               std::forward<Callback>(callback),
                                               std::forward<ErrorCallback>(error_callback));
  }

  // starmap(), starmap_async()
  //
  // map() where each item is a tuple (or pair) of arguments: func(a, b).
  template <class F, std::ranges::input_range Range>
  auto starmap(F&& func, Range&& range, std::size_t chunksize = 0) {
    return starmap_async(std::forward<F>(func), std::forward<Range>(range), chunksize).take();
  }
  template <class F, std::ranges::input_range Range, class Callback = std::nullptr_t,
            class ErrorCallback = std::nullptr_t>
  auto starmap_async(F&& func, Range&& range, std::size_t chunksize = 0, Callback&& callback = nullptr,
                     ErrorCallback&& error_callback = nullptr) {
    return derived().template start_map<true>(std::forward<F>(func), std::forward<Range>(range), chunksize,
                                              std::forward<Callback>(callback),
                                              std::forward<ErrorCallback>(error_callback));
  }

  // imap(), imap_unordered()
  //
  // func(item) for each item of `range`, as an input range of results (see
  // mproc/imap.hpp): in order, or as they finish. The range is read lazily,
  // a bounded number of chunks ahead, by the thread that iterates; it must
  // outlive the iteration if it is an lvalue (an rvalue is moved in).
  template <class F, std::ranges::input_range Range>
  auto imap(F&& func, Range&& range, std::size_t chunksize = 1) {
    return derived().start_imap(std::forward<F>(func), std::forward<Range>(range), chunksize, true);
  }
  template <class F, std::ranges::input_range Range>
  auto imap_unordered(F&& func, Range&& range, std::size_t chunksize = 1) {
    return derived().start_imap(std::forward<F>(func), std::forward<Range>(range), chunksize, false);
  }

  // close()
  //
  // No more tasks may be submitted (UsageError); the workers leave once all
  // submitted tasks are done.
  void close() { derived().close_pool(); }

  // terminate()
  //
  // Stops the workers at once; tasks not finished fail with BrokenProcessPool.
  void terminate() { derived().terminate_pool(); }

  // join()
  //
  // Waits for the workers to leave, after close() or terminate()
  // (UsageError before). With a timeout, returns whether they did.
  void join() { derived().join_pool(std::nullopt); }
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return derived().join_pool(to_timeout(timeout));
  }

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }
};

}  // namespace mproc::detail
