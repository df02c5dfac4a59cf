// mproc/condition.hpp
//
// Condition: Python's multiprocessing.Condition in shared memory, a
// condition variable with its lock (an RLock unless given a Lock or RLock).
// A handle, like Lock.
//
// Example:
//
//   mproc::Condition ready;
//   // consumer:
//   std::scoped_lock hold(ready);
//   ready.wait_for([&] { return queue_has_items(); });
//   // producer:
//   std::scoped_lock hold(ready);
//   add_item();
//   ready.notify();
//
// notify(n) wakes exactly n of the processes waiting at that moment (fewer
// if fewer wait), those waiting longest: waiters that timed out before it
// are not counted, and one that starts waiting after it cannot take its
// wake-up. At most 255 processes and threads wait at once (ProcessError
// beyond).

#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <variant>

#include "mproc/codec.hpp"
#include "mproc/detail/shared_block.hpp"
#include "mproc/lock.hpp"
#include "mproc/timeout.hpp"

namespace mproc {

namespace detail {
struct ConditionState;
}

class Condition : public detail::Lockable<Condition> {
 public:
  // A condition over a new RLock.
  Condition();
  // A condition over `lock` (shared with whoever else holds it).
  explicit Condition(Lock lock);
  explicit Condition(RLock lock);

  // The lock's acquire() and release().
  bool acquire(bool block = true);
  template <class Rep, class Period>
  bool acquire(bool block, std::chrono::duration<Rep, Period> timeout) {
    return std::visit([&](auto& lock) { return lock.acquire(block, timeout); }, lock_);
  }
  void release();

  // Condition::wait()
  //
  // Releases the lock (every level of an RLock), waits for a notify (at
  // most `timeout`), and takes the lock back. Returns false if the timeout
  // passed first. UsageError if the caller does not hold the lock;
  // OwnerDiedError if taking the lock back finds its holder died: the
  // caller holds the lock then too, as after every wait, so a scoped lock
  // around the wait releases it.
  bool wait() { return wait_until(std::nullopt); }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(detail::to_timeout(timeout)));
  }

  // Condition::wait_for()
  //
  // Python's wait_for(predicate, timeout): waits until `predicate()` is true,
  // at most `timeout` in all. Returns the predicate's last value.
  template <class Predicate>
  bool wait_for(Predicate predicate) {
    while (!predicate()) wait();
    return true;
  }
  template <class Predicate, class Rep, class Period>
  bool wait_for(Predicate predicate, std::chrono::duration<Rep, Period> timeout) {
    auto deadline = detail::deadline_after(detail::to_timeout(timeout));
    bool result = predicate();
    while (!result) {
      if (detail::deadline_passed(deadline)) break;
      wait_until(deadline);
      result = predicate();
    }
    return result;
  }

  // Condition::notify()
  //
  // Wakes `n` of the current waiters, the longest waiting (all of them if
  // fewer). UsageError if the caller does not hold the lock.
  void notify(int n = 1);
  void notify_all();

  bool operator==(const Condition& other) const noexcept { return block_ == other.block_; }

  void save(Encoder& encoder) const;
  void load(Decoder& decoder);

 private:
  bool wait_until(std::optional<std::chrono::steady_clock::time_point> deadline);
  bool held_by_caller() const;

  std::variant<RLock, Lock> lock_;
  std::shared_ptr<detail::SharedBlock> block_;
  detail::ConditionState* state_ = nullptr;
};

}  // namespace mproc
