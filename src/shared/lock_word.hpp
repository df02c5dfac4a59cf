// The lock under Lock, RLock and the arena's allocator: one futex word in
// shared memory holding the owner's pid (0 when free) and a bit telling the
// owner that someone sleeps on it. Taking a free lock is one compare-and-swap
// and giving it back one exchange: no system call unless there is contention.
//
// A waiter checks, every kOwnerCheckInterval, that the owner is still alive;
// if it died holding the lock, the waiter takes the lock over from it
// (compare-and-swap on the dead owner's word, so only one waiter does) and
// reports owner_died.

#pragma once

#include <chrono>
#include <cstdint>

#include "mproc/detail/lock_state.hpp"
#include "os/futex.hpp"
#include "os/timeout.hpp"

namespace mproc::detail {

inline constexpr auto kOwnerCheckInterval = std::chrono::milliseconds(50);

enum class LockResult { acquired, timed_out, owner_died };

inline int lock_owner(std::uint32_t word) { return static_cast<int>(word & ~kLockSleepers); }

// Takes the lock as `me` (a pid), waiting at most `timeout` when `block`.
// On owner_died the caller holds the lock.
LockResult lock_word_acquire(os::FutexWord& word, std::uint32_t me, bool block, os::Timeout timeout);

// Frees the lock, waking one sleeper if there is one. Returns the word it
// held (0: the lock was not held).
inline std::uint32_t lock_word_release(os::FutexWord& word) {
  std::uint32_t old = word.exchange(0, std::memory_order_release);
  if ((old & kLockSleepers) != 0) os::futex_wake(word, 1);
  return old;
}

}  // namespace mproc::detail
