// mproc/lock.hpp
//
// Lock and RLock: Python's multiprocessing.Lock and RLock, in shared memory,
// for processes and threads alike. Both offer Python's names (acquire,
// release) and the standard Lockable ones (lock, unlock, try_lock,
// try_lock_for, try_lock_until), so std::scoped_lock and std::unique_lock
// work with them.
//
// Example:
//
//   mproc::Lock lock;
//   mproc::Process p([lock]() mutable {
//     std::scoped_lock hold(lock);
//     std::puts("only one process prints at a time");
//   });
//
// A Lock or RLock is a handle: copies (and a forked child's copies) are the
// same lock, and a handle can be sent over a Connection to a process that
// was already running. Taking a free lock and releasing it makes no system
// call. If the process holding a lock dies, the next acquirer gets
// OwnerDiedError within about 50 ms instead of waiting forever, and the
// lock is free again after it.

#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "mproc/codec.hpp"
#include "mproc/detail/lock_state.hpp"
#include "mproc/detail/shared_block.hpp"
#include "mproc/timeout.hpp"

namespace mproc {

class Condition;

namespace detail {
enum class LockResult;

// Wakes one sleeper of a just-released lock word.
void wake_lock_sleeper(std::atomic<std::uint32_t>& word);

// The Lockable names, from acquire() and release().
template <class Derived>
class Lockable {
 public:
  void lock() { self().acquire(true); }
  void unlock() { self().release(); }
  bool try_lock() { return self().acquire(false); }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return self().acquire(true, timeout);
  }
  template <class Clock, class Duration>
  bool try_lock_until(std::chrono::time_point<Clock, Duration> deadline) {
    return try_lock_for(deadline - Clock::now());
  }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
};
}  // namespace detail

// Lock
//
// A non-recursive lock. As in Python, any process or thread may release it,
// not only the one that acquired it; acquiring it twice from one thread
// without a release waits (for ever, without a timeout).
class Lock : public detail::Lockable<Lock> {
 public:
  // A new, unlocked lock.
  Lock();

  // Lock::acquire()
  //
  // Python's acquire(block=True, timeout=None): waits for the lock (at most
  // `timeout`) if `block`, else only tries. Returns whether it was acquired.
  // Throws OwnerDiedError if its holder died holding it.
  bool acquire(bool block = true) { return take_free() || acquire_for(block, std::nullopt); }
  template <class Rep, class Period>
  bool acquire(bool block, std::chrono::duration<Rep, Period> timeout) {
    return take_free() || acquire_for(block, detail::to_timeout(timeout));
  }

  // Lock::release()
  //
  // Frees the lock. UsageError if it is not held.
  void release() {
    state_->owner_thread.store(0, std::memory_order_relaxed);
    std::uint32_t old = state_->word.exchange(0, std::memory_order_release);
    if (old == 0 || (old & detail::kLockSleepers) != 0) release_slow(old);
  }

  // Two handles to the same lock compare equal.
  bool operator==(const Lock& other) const noexcept { return block_ == other.block_; }

  // Encoding, for the codec: the lock crosses as a reference to its memory.
  void save(Encoder& encoder) const;
  void load(Decoder& decoder);

 private:
  friend class Condition;
  bool take_free() {
    if (!detail::try_take_free(state_->word, detail::lock_owner_id())) return false;
    state_->owner_thread.store(detail::thread_token(), std::memory_order_relaxed);
    return true;
  }
  void release_slow(std::uint32_t old);
  detail::LockResult take_for_caller(bool block, std::optional<std::chrono::nanoseconds> timeout);
  bool acquire_for(bool block, std::optional<std::chrono::nanoseconds> timeout);
  bool held_by_caller() const noexcept { return detail::held_by_this_thread(state_->word, state_->owner_thread); }
  // For Condition::wait(): takes the lock back, holding it even when
  // throwing OwnerDiedError.
  void reacquire();

  std::shared_ptr<detail::SharedBlock> block_;
  detail::LockState* state_ = nullptr;
};

// RLock
//
// A recursive lock: the thread that holds it may acquire it again, and must
// release it as many times; only that thread may release it.
class RLock : public detail::Lockable<RLock> {
 public:
  // A new, unlocked recursive lock.
  RLock();

  // RLock::acquire()
  //
  // As Lock::acquire(); acquiring a lock the calling thread holds counts one
  // more level and returns true at once.
  bool acquire(bool block = true) { return take_again_or_free() || acquire_for(block, std::nullopt); }
  template <class Rep, class Period>
  bool acquire(bool block, std::chrono::duration<Rep, Period> timeout) {
    return take_again_or_free() || acquire_for(block, detail::to_timeout(timeout));
  }

  // RLock::release()
  //
  // Releases one level. UsageError if the calling thread does not hold it.
  void release() {
    if (!held_by_caller()) release_unheld();
    std::uint32_t levels = state_->levels.load(std::memory_order_relaxed);
    if (levels > 1) {
      state_->levels.store(levels - 1, std::memory_order_relaxed);
      return;
    }
    state_->owner_thread.store(0, std::memory_order_relaxed);
    if ((state_->word.exchange(0, std::memory_order_release) & detail::kLockSleepers) != 0) {
      detail::wake_lock_sleeper(state_->word);
    }
  }

  bool operator==(const RLock& other) const noexcept { return block_ == other.block_; }

  void save(Encoder& encoder) const;
  void load(Decoder& decoder);

 private:
  friend class Condition;
  // Counts one more level if the caller holds it, or takes it if free.
  bool take_again_or_free() {
    if (held_by_caller()) {
      state_->levels.store(state_->levels.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      return true;
    }
    if (!detail::try_take_free(state_->word, detail::lock_owner_id())) return false;
    state_->owner_thread.store(detail::thread_token(), std::memory_order_relaxed);
    state_->levels.store(1, std::memory_order_relaxed);
    return true;
  }
  [[noreturn]] static void release_unheld();
  detail::LockResult take_for_caller(bool block, std::optional<std::chrono::nanoseconds> timeout,
                                     std::uint32_t levels);
  bool acquire_for(bool block, std::optional<std::chrono::nanoseconds> timeout);
  bool held_by_caller() const noexcept { return detail::held_by_this_thread(state_->word, state_->owner_thread); }
  // For Condition::wait(): releases every level, returning how many; and
  // takes the lock back with that many (holding it even when throwing
  // OwnerDiedError).
  std::uint32_t release_all();
  void reacquire(std::uint32_t levels);

  std::shared_ptr<detail::SharedBlock> block_;
  detail::RLockState* state_ = nullptr;
};

}  // namespace mproc
