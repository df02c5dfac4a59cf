#include "shared/lock_word.hpp"

#include <algorithm>
#include <chrono>

namespace mproc::detail {
namespace {

// Spins before sleeping: long enough to catch a short critical section on
// another CPU, short enough to cost little when the owner shares ours.
constexpr int kSpins = 100;

// If the owner recorded in `seen` has died, takes the lock over from it.
bool take_over_from_dead_owner(os::FutexWord& word, std::uint32_t seen, std::uint32_t me) {
  int owner = lock_owner(seen);
  if (owner == 0 || os::process_alive(owner)) return false;
  return word.compare_exchange_strong(seen, me | kLockSleepers, std::memory_order_acquire);
}

// Whether this thread looked at this owner of this word less than
// kOwnerCheckInterval ago: a try_lock() polled in a loop then fails without
// the several system calls a liveness check costs, and still sees a dead
// owner within the interval.
bool owner_checked_recently(const os::FutexWord& word, std::uint32_t seen) {
  thread_local const os::FutexWord* last_word = nullptr;
  thread_local std::uint32_t last_owner = 0;
  thread_local std::chrono::steady_clock::time_point last_check;
  auto now = std::chrono::steady_clock::now();
  std::uint32_t owner = seen & ~kLockSleepers;
  if (last_word == &word && last_owner == owner && now - last_check < kOwnerCheckInterval) return true;
  last_word = &word;
  last_owner = owner;
  last_check = now;
  return false;
}

}  // namespace

LockResult lock_word_acquire(os::FutexWord& word, std::uint32_t me, bool block, os::Timeout timeout) {
  if (try_take_free(word, me)) return LockResult::acquired;
  if (!block) {
    std::uint32_t seen = word.load();
    if (owner_checked_recently(word, seen)) return LockResult::timed_out;
    return take_over_from_dead_owner(word, seen, me) ? LockResult::owner_died : LockResult::timed_out;
  }
  for (int i = 0; i < kSpins; ++i) {
    os::cpu_relax();
    if (word.load(std::memory_order_relaxed) == 0 && try_take_free(word, me)) return LockResult::acquired;
  }
  os::Deadline deadline(timeout);
  for (;;) {
    std::uint32_t seen = word.load();
    if (seen == 0) {
      // Others may sleep too: keep the bit, so that our release wakes one.
      if (word.compare_exchange_strong(seen, me | kLockSleepers, std::memory_order_acquire)) {
        return LockResult::acquired;
      }
      continue;
    }
    if ((seen & kLockSleepers) == 0) {
      if (!word.compare_exchange_strong(seen, seen | kLockSleepers)) continue;
      seen |= kLockSleepers;
    }
    os::Timeout left = deadline.remaining();
    if (left && left->count() == 0) return LockResult::timed_out;
    os::Timeout slice = left ? std::min<std::chrono::nanoseconds>(*left, kOwnerCheckInterval)
                             : std::chrono::nanoseconds(kOwnerCheckInterval);
    auto woken = os::futex_wait(word, seen, slice);
    if (woken.ok() && woken.value) continue;
    if (take_over_from_dead_owner(word, seen, me)) return LockResult::owner_died;
  }
}

}  // namespace mproc::detail
