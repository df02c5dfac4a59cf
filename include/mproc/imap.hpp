// mproc/imap.hpp
//
// IMapIterator<R>: the lazy results of Pool::imap(), imap_unordered(),
// ThreadPool's and ProcessPoolExecutor::map(): an input range, each item
// the result of one call, in input order (imap, executor map) or in the
// order they finish (imap_unordered).
//
//   for (int square : pool.imap(square_of, std::views::iota(0, 1'000'000))) ...
//
// The input is read lazily, on the thread that iterates, a bounded number of
// chunks ahead of the results consumed: an endless input range works, and
// memory stays flat however long it runs. Dereferencing an item whose call
// threw rethrows that exception; the iteration may go on after it (++), as
// Python's next() may be called again.

#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/errors.hpp"
#include "mproc/timeout.hpp"

namespace mproc {

namespace detail {

// What one chunk of input became: a value per item (default-constructed
// where the call threw), the items whose call threw, or one error for the
// whole chunk (its worker was lost, the pool was terminated).
template <class R>
struct ChunkOutcome {
  std::vector<R> values;
  std::vector<std::pair<std::size_t, std::exception_ptr>> errors;  // by item, ascending
  std::exception_ptr whole;
  std::size_t size = 0;
};

// Reads the next chunk of input and hands it to the pool, as chunk number
// `chunk`. Returns its number of items, or 0 when the input is exhausted.
// Only the thread that iterates calls it: the user's range is never touched
// by another thread.
class ChunkFeeder {
 public:
  virtual ~ChunkFeeder() = default;
  virtual std::size_t feed(std::size_t chunk) = 0;
  // The input has ended (or failed): the pool need not wait for more.
  virtual void input_ended() {}
};

// What a pool knows of a stream whose input is not read to the end: after
// close(), join() reads the rest of it (as CPython's imap had read its
// whole input at once), and the workers stay until then.
class OpenInput {
 public:
  virtual ~OpenInput() = default;
  virtual void drain() = 0;
  virtual bool input_finished() const = 0;
};

// A thread to wake once a burst of deliveries is over.
class Wakeable {
 public:
  virtual ~Wakeable() = default;
  virtual void wake() = 0;
};

// Set on a pool's result thread, which delivers many chunks in a burst:
// the iterating thread is then woken once per burst rather than once per
// chunk. Null elsewhere: wake at once.
using WakeDeferrer = void (*)(std::shared_ptr<Wakeable> sleeper);
inline thread_local WakeDeferrer defer_wake = nullptr;

// How many chunks an imap keeps submitted ahead of the results consumed:
// a few per worker, and for small chunks enough items that the iterating
// thread finds many results each time it wakes.
inline std::size_t chunks_ahead(int processes, std::size_t chunksize) {
  std::size_t per_workers = 8 + 4 * static_cast<std::size_t>(processes);
  std::size_t for_small_chunks = 512 / chunksize;
  return per_workers > for_small_chunks ? per_workers : for_small_chunks;
}

// The state between a pool, which delivers chunks on its result thread, and
// the thread that iterates.
template <class R>
class ResultStream final : public OpenInput, public Wakeable {
 public:
  // An item as the iterating thread sees it (a bool by value: std::vector<bool>).
  using Reference = std::conditional_t<std::is_same_v<R, bool>, bool, R&>;

  ResultStream(bool ordered, std::size_t chunks_ahead)
      : ordered_(ordered), chunks_ahead_(chunks_ahead < 1 ? 1 : chunks_ahead) {}

  void set_feeder(std::unique_ptr<ChunkFeeder> feeder) { feeder_ = std::move(feeder); }
  using Deadline = std::optional<std::chrono::steady_clock::time_point>;
  void set_deadline(Deadline deadline) { deadline_ = deadline; }
  Deadline deadline() const { return deadline_; }

  // The pool's side.
  void deliver(std::size_t chunk, ChunkOutcome<R> outcome) {
    if (deliver_quietly(chunk, std::move(outcome))) wake();
  }
  // Stores a chunk; returns whether the iterating thread waits for it (and
  // must be woken).
  bool deliver_quietly(std::size_t chunk, ChunkOutcome<R> outcome) {
    std::lock_guard lock(mutex_);
    std::size_t key = ordered_ ? chunk : arrivals_++;
    arrived_.emplace(key, std::move(outcome));
    // Only for the chunk it waits for: the others it will find when it gets there.
    return waiting_for_ == key;
  }
  void wake() override { arrived_cv_.notify_all(); }
  void fail(std::size_t chunk, std::size_t size, std::exception_ptr error) {
    ChunkOutcome<R> outcome;
    outcome.whole = std::move(error);
    outcome.size = size;
    deliver(chunk, std::move(outcome));
  }

  // The iterating thread's side.

  // Fills the window of chunks submitted ahead.
  void top_up() {
    std::lock_guard lock(feed_mutex_);
    feed_locked(chunks_ahead_);
  }

  // Reads and submits the whole rest of the input (from any thread).
  void drain() override {
    std::lock_guard lock(feed_mutex_);
    feed_locked(static_cast<std::size_t>(-1));
  }
  bool input_finished() const override { return input_finished_.load(std::memory_order_acquire); }

  bool at_end() {
    std::size_t submitted = 0;
    {
      std::lock_guard lock(feed_mutex_);
      submitted = submitted_items_;
    }
    if (consumed_items_ < submitted) return false;
    top_up();
    std::lock_guard lock(feed_mutex_);
    return consumed_items_ == submitted_items_;
  }

  // The current item; throws the error of its call, TimeoutError after the
  // deadline, or UsageError past the end.
  Reference current() {
    ChunkOutcome<R>& chunk = current_chunk();
    if (chunk.whole) std::rethrow_exception(chunk.whole);
    for (const auto& [item, error] : chunk.errors) {
      if (item == item_) std::rethrow_exception(error);
    }
    return chunk.values[item_];
  }

  // Waits until the current item has arrived: TimeoutError after the
  // deadline, UsageError past the end.
  void wait_current() { current_chunk(); }

  void advance() {
    ChunkOutcome<R>& chunk = current_chunk();
    ++consumed_items_;
    if (++item_ < chunk.size) return;
    {
      std::lock_guard lock(mutex_);
      arrived_.erase(consumed_chunks_);
    }
    current_ = nullptr;
    item_ = 0;
    {
      std::lock_guard lock(feed_mutex_);
      ++consumed_chunks_;
    }
    top_up();
  }

 private:
  void feed_locked(std::size_t ahead) {
    while (!input_done_ && submitted_chunks_ - consumed_chunks_ < ahead) {
      std::size_t chunk = submitted_chunks_;
      std::size_t size = 0;
      try {
        size = feeder_->feed(chunk);
      } catch (...) {
        // The input (or the submission) failed: that error takes this
        // position, and nothing after it is read.
        ++submitted_chunks_;
        ++submitted_items_;
        fail(chunk, 1, std::current_exception());
        end_input();
        return;
      }
      if (size == 0) {
        end_input();
        return;
      }
      ++submitted_chunks_;
      submitted_items_ += size;
    }
  }

  void end_input() {
    input_done_ = true;
    input_finished_.store(true, std::memory_order_release);
    std::unique_ptr<ChunkFeeder> feeder = std::move(feeder_);
    feeder->input_ended();
  }

  ChunkOutcome<R>& current_chunk() {
    if (current_) return *current_;
    if (at_end()) throw UsageError("IMapIterator: no more results");
    std::unique_lock lock(mutex_);
    auto arrived = [&] { return arrived_.count(consumed_chunks_) != 0; };
    waiting_for_ = consumed_chunks_;
    bool came = true;
    if (deadline_) {
      came = arrived_cv_.wait_until(lock, *deadline_, arrived);
    } else {
      arrived_cv_.wait(lock, arrived);
    }
    waiting_for_ = kNobody;
    if (!came) throw TimeoutError("the result was not ready in time");
    // Nodes of a std::map stay put while others are added: the pool may go
    // on delivering while this thread reads the chunk without the lock.
    current_ = &arrived_.find(consumed_chunks_)->second;
    return *current_;
  }

  const bool ordered_;
  const std::size_t chunks_ahead_;
  Deadline deadline_;

  std::mutex mutex_;
  std::condition_variable arrived_cv_;
  std::map<std::size_t, ChunkOutcome<R>> arrived_;  // by chunk (ordered) or by arrival
  std::size_t arrivals_ = 0;
  static constexpr std::size_t kNobody = static_cast<std::size_t>(-1);
  std::size_t waiting_for_ = kNobody;  // the chunk the iterating thread sleeps for

  // The input's side, under feed_mutex_: the iterating thread tops up, and
  // a pool's join() may drain.
  mutable std::mutex feed_mutex_;
  std::unique_ptr<ChunkFeeder> feeder_;
  bool input_done_ = false;
  std::atomic<bool> input_finished_{false};
  std::size_t submitted_chunks_ = 0;
  std::size_t submitted_items_ = 0;
  std::size_t consumed_chunks_ = 0;  // written under feed_mutex_, by the iterating thread

  // Only the iterating thread touches these.
  std::size_t consumed_items_ = 0;
  ChunkOutcome<R>* current_ = nullptr;
  std::size_t item_ = 0;
};

}  // namespace detail

// IMapIterator<R>
//
// An input range over results (see the top of this file). Move-only: one
// thread iterates it. Destroying it before the end abandons the remaining
// results (tasks already handed to workers still run).
template <class R>
class IMapIterator {
  static_assert(!std::is_void_v<R>, "imap: the function must return a value");

 public:
  // What dereferencing gives: the item, which may be moved from (a bool by value).
  using reference = typename detail::ResultStream<R>::Reference;

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    using reference = IMapIterator::reference;

    iterator() = default;
    reference operator*() const { return stream_->current(); }
    iterator& operator++() {
      stream_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.stream_->at_end(); }

   private:
    friend class IMapIterator;
    explicit iterator(detail::ResultStream<R>* stream) : stream_(stream) {}
    detail::ResultStream<R>* stream_ = nullptr;
  };

  explicit IMapIterator(std::shared_ptr<detail::ResultStream<R>> stream) : stream_(std::move(stream)) {}
  IMapIterator(IMapIterator&&) noexcept = default;
  IMapIterator& operator=(IMapIterator&&) noexcept = default;

  iterator begin() { return iterator(stream_.get()); }
  std::default_sentinel_t end() { return {}; }

  // IMapIterator::next()
  //
  // The next result (moved out), or nothing at the end; throws the call's
  // exception for an item whose call threw (the next call goes on after
  // it). With a timeout, throws TimeoutError if the result is not ready by
  // then, and stays at that item.
  std::optional<R> next() {
    if (stream_->at_end()) return std::nullopt;
    return take();
  }
  template <class Rep, class Period>
  std::optional<R> next(std::chrono::duration<Rep, Period> timeout) {
    if (stream_->at_end()) return std::nullopt;
    struct Restore {
      detail::ResultStream<R>* stream;
      typename detail::ResultStream<R>::Deadline previous;
      ~Restore() { stream->set_deadline(previous); }
    } restore{stream_.get(), stream_->deadline()};
    stream_->set_deadline(detail::deadline_after(detail::to_timeout(timeout)));
    return take();
  }

 private:
  R take() {
    stream_->wait_current();  // a TimeoutError here leaves the position as it is
    try {
      R value = std::move(stream_->current());
      stream_->advance();
      return value;
    } catch (...) {  // the call's own exception (a TimeoutError too)
      stream_->advance();
      throw;
    }
  }

  std::shared_ptr<detail::ResultStream<R>> stream_;
};

}  // namespace mproc
