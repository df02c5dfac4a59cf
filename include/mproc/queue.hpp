// mproc/queue.hpp
//
// Queue<T>, SimpleQueue<T> and JoinableQueue<T>: Python's multiprocessing
// queues, typed. Items travel through shared memory (a ring of slots, with
// large items in a heap beside it), not through a pipe and a feeder thread:
// put() has finished with the item when it returns, so a process may exit
// or be joined at once after putting, whatever it put.
//
//   mproc::Queue<std::string> q;
//   mproc::Process p([q]() mutable { q.put("hello"); });
//   p.start();
//   std::cout << q.get() << "\n";  // hello
//   p.join();
//
// Items are encoded with mproc's codec (mproc/codec.hpp); an item may not
// hold descriptors (a Connection, a Lock, another Queue): Python refuses
// those too. A queue handle is cheap to copy; copies share the queue. It is
// given to children like any handle, and can be sent over a Connection.
//
// A process killed in the middle of a put() or get() never wedges the queue
// and never makes anyone receive a partial item: its claim is found dead and
// dropped (the item it was putting is lost, as is the one it was taking).
// See docs/queues.md for the differences from Python.

#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <utility>

#include "mproc/codec.hpp"
#include "mproc/detail/queue_core.hpp"
#include "mproc/errors.hpp"
#include "mproc/timeout.hpp"

namespace mproc {

namespace detail {

// What the queue templates share: the core, encoding and decoding.
template <class T>
class TypedQueue {
 public:
  bool operator==(const TypedQueue& other) const noexcept { return core_ == other.core_; }

  void save(Encoder& encoder) const { save_queue(encoder, *core_); }
  void load(Decoder& decoder) { core_ = load_queue(decoder, kind_, type_fingerprint<T>()); }

 protected:
  TypedQueue(QueueKind kind, std::size_t maxsize)
      : kind_(kind), core_(create_queue(kind, type_fingerprint<T>(), maxsize)) {}

  bool put_item(const T& item, bool block, QueueTimeout timeout) {
    Encoder& encoder = queue_encoder();
    encoder.encode(item);
    bool put = queue_put(*core_, encoder, block, timeout);
    trim_queue_encoder();
    return put;
  }

  std::optional<T> get_item(bool block, QueueTimeout timeout) {
    std::optional<T> item;
    if (!queue_get(*core_, &decode_into, &item, block, timeout)) return std::nullopt;
    return item;
  }

  QueueKind kind_;
  std::shared_ptr<QueueCore> core_;

 private:
  static void decode_into(void* context, std::span<const std::byte> message, std::span<const ByteView> buffers,
                          bool fingerprinted) {
    auto& item = *static_cast<std::optional<T>*>(context);
    Decoder decoder(message, buffers);
    if (fingerprinted) {
      item.emplace(decoder.decode<T>());
      return;
    }
    T value{};
    decoder.read(value);
    if (decoder.remaining() != 0) decoder.fail("bytes left over after the item");
    item.emplace(std::move(value));
  }
};

}  // namespace detail

// Queue
//
// A first-in, first-out queue shared by processes (Python's
// multiprocessing.Queue). `maxsize` bounds the number of items waiting
// (0: no bound; put() never waits). With one consumer, each producer's items
// arrive in the order it put them.
template <class T>
class Queue : public detail::TypedQueue<T> {
  static_assert(transferable<T>, "Queue<T>: T must be transferable (see mproc/codec.hpp)");

 public:
  // A new, empty queue. Throws std::invalid_argument for a maxsize above
  // 4194304 (use 0 for no bound).
  explicit Queue(std::size_t maxsize = 0) : Queue(detail::QueueKind::queue, maxsize) {}

  // Queue::put()
  //
  // Puts `item`, waiting while a bounded queue is full: for at most
  // `timeout` (then Full is thrown and nothing was put), or not at all when
  // `block` is false (Python: a timeout given with block=False is ignored).
  // An item that fails to encode throws EncodeError and takes no room.
  // Throws UsageError after close() in this process.
  void put(const T& item) { this->put_item(item, true, std::nullopt); }
  template <class Rep, class Period>
  void put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    if (!this->put_item(item, true, detail::to_timeout(timeout))) throw_full();
  }
  void put(const T& item, bool block) {
    if (!this->put_item(item, block, std::nullopt)) throw_full();
  }
  template <class Rep, class Period>
  void put(const T& item, bool block, std::chrono::duration<Rep, Period> timeout) {
    if (!this->put_item(item, block, detail::to_timeout(timeout))) throw_full();
  }
  void put_nowait(const T& item) { put(item, false); }

  // Queue::try_put()
  //
  // put() that returns false instead of throwing Full.
  bool try_put(const T& item) { return this->put_item(item, false, std::nullopt); }
  template <class Rep, class Period>
  bool try_put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    return this->put_item(item, true, detail::to_timeout(timeout));
  }

  // Queue::get()
  //
  // Takes the next item, waiting for one: for at most `timeout` (then
  // Empty is thrown), or not at all when `block` is false. An item that
  // fails to decode is taken all the same and DecodeError thrown. Throws
  // UsageError after close() in this process.
  T get() { return std::move(*this->get_item(true, std::nullopt)); }
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    return or_empty(this->get_item(true, detail::to_timeout(timeout)));
  }
  T get(bool block) { return or_empty(this->get_item(block, std::nullopt)); }
  template <class Rep, class Period>
  T get(bool block, std::chrono::duration<Rep, Period> timeout) {
    return or_empty(this->get_item(block, detail::to_timeout(timeout)));
  }
  T get_nowait() { return get(false); }

  // Queue::try_get()
  //
  // get() that returns std::nullopt instead of throwing Empty.
  std::optional<T> try_get() { return this->get_item(false, std::nullopt); }
  template <class Rep, class Period>
  std::optional<T> try_get(std::chrono::duration<Rep, Period> timeout) {
    return this->get_item(true, detail::to_timeout(timeout));
  }

  // Queue::qsize()
  //
  // The number of items put and not yet taken (approximate while others
  // put and get, as in Python). Items being put or taken at that moment
  // count as in the queue.
  std::size_t qsize() const noexcept { return detail::queue_size(*this->core_); }
  bool empty() const noexcept { return qsize() == 0; }
  bool full() const noexcept { return maxsize() != 0 && qsize() >= maxsize(); }
  std::size_t maxsize() const noexcept { return detail::queue_maxsize(*this->core_); }

  // Queue::close()
  //
  // This process is done with the queue through this handle and its
  // copies: later put()s and get()s throw UsageError (Python: ValueError).
  // A child forked afterwards starts with it open. There is no feeder
  // thread to stop: every put() has already finished.
  void close() noexcept { detail::queue_close(*this->core_); }

  // Queue::join_thread()
  //
  // Python waits here for the feeder thread to flush what was put. mproc
  // has none (put() completes into shared memory), so this returns at
  // once; as in Python it may only be called after close() (UsageError).
  void join_thread() const {
    if (!detail::queue_closed(*this->core_)) throw UsageError("Queue: join_thread() before close()");
  }

  // Queue::cancel_join_thread()
  //
  // Python's way to let a process exit without flushing its puts (losing
  // them). Nothing is ever left to flush here, so it does nothing and loses
  // nothing.
  void cancel_join_thread() noexcept {}

 protected:
  Queue(detail::QueueKind kind, std::size_t maxsize) : detail::TypedQueue<T>(kind, maxsize) {}

 private:
  [[noreturn]] static void throw_full() { throw Full("Queue is full"); }
  static T or_empty(std::optional<T>&& item) {
    if (!item) throw Empty("Queue is empty");
    return std::move(*item);
  }
};

// JoinableQueue
//
// A Queue that counts the items put and not yet marked done, so that a
// producer can wait until consumers have processed everything (Python's
// multiprocessing.JoinableQueue).
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  explicit JoinableQueue(std::size_t maxsize = 0) : Queue<T>(detail::QueueKind::joinable, maxsize) {}

  // JoinableQueue::task_done()
  //
  // Marks one item taken by get() as processed. Throws UsageError when
  // called more times than items were put (Python: ValueError).
  void task_done() { detail::queue_task_done(*this->core_); }

  // JoinableQueue::join()
  //
  // Waits until every item put (by any process) has been marked done; with
  // a timeout, returns whether that happened in time.
  void join() { detail::queue_join(*this->core_, std::nullopt); }
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return detail::queue_join(*this->core_, detail::to_timeout(timeout));
  }
};

// SimpleQueue
//
// An unbounded queue with only put, get and empty (Python's
// multiprocessing.SimpleQueue); as fast as Queue, with less to misuse.
template <class T>
class SimpleQueue : public detail::TypedQueue<T> {
  static_assert(transferable<T>, "SimpleQueue<T>: T must be transferable (see mproc/codec.hpp)");

 public:
  SimpleQueue() : detail::TypedQueue<T>(detail::QueueKind::simple, 0) {}

  // Puts `item` (never waits). Throws UsageError after close().
  void put(const T& item) {
    check_open();
    this->put_item(item, true, std::nullopt);
  }

  // Takes the next item, waiting for one.
  T get() {
    check_open();
    return std::move(*this->get_item(true, std::nullopt));
  }

  bool empty() const {
    check_open();
    return detail::queue_size(*this->core_) == 0;
  }

  // SimpleQueue::close()
  //
  // As in Python: this handle and its copies in this process may not be
  // used any more (UsageError); other processes' handles are not affected.
  void close() noexcept { detail::queue_close(*this->core_); }

 private:
  void check_open() const {
    if (detail::queue_closed(*this->core_)) throw UsageError("SimpleQueue: used after close()");
  }
};

}  // namespace mproc
