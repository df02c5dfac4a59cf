// mproc/semaphore.hpp
//
// Semaphore and BoundedSemaphore: Python's multiprocessing.Semaphore and
// BoundedSemaphore in shared memory. Handles, like Lock: copies and forked
// children share one semaphore, and it can be sent over a Connection.
//
// Example:
//
//   mproc::Semaphore slots(2);  // at most two workers at a time
//   ... in each worker:
//   std::scoped_lock hold(slots);

#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include "mproc/codec.hpp"
#include "mproc/detail/shared_block.hpp"
#include "mproc/lock.hpp"
#include "mproc/timeout.hpp"

namespace mproc {

namespace detail {
struct SemaphoreState;
}

// Semaphore
//
// A counter that acquire() decrements, waiting while it is zero, and
// release() increments. Acquiring and releasing without contention makes no
// system call.
class Semaphore : public detail::Lockable<Semaphore> {
 public:
  // A semaphore holding `value` (UsageError if negative or above 2^31 - 1).
  explicit Semaphore(int value = 1);

  // Semaphore::acquire()
  //
  // Python's acquire(block=True, timeout=None): takes one unit, waiting for
  // it (at most `timeout`) if `block`. Returns whether it took one.
  bool acquire(bool block = true) { return acquire_for(block, std::nullopt); }
  template <class Rep, class Period>
  bool acquire(bool block, std::chrono::duration<Rep, Period> timeout) {
    return acquire_for(block, detail::to_timeout(timeout));
  }

  // Semaphore::release()
  //
  // Gives back one unit, waking one waiter.
  void release();

  // The current count (Python's get_value()).
  int get_value() const noexcept;

  bool operator==(const Semaphore& other) const noexcept { return block_ == other.block_; }

  void save(Encoder& encoder) const;
  void load(Decoder& decoder);

 protected:
  Semaphore(int value, bool bounded);

 private:
  bool acquire_for(bool block, std::optional<std::chrono::nanoseconds> timeout);

  std::shared_ptr<detail::SharedBlock> block_;
  detail::SemaphoreState* state_ = nullptr;
};

// BoundedSemaphore
//
// A Semaphore whose release() beyond its initial value is an error
// (UsageError), which catches releasing more often than acquiring.
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(int value = 1) : Semaphore(value, true) {}
};

}  // namespace mproc
