#include "shared/lock_word.hpp"

#include <algorithm>

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

}  // namespace

LockResult lock_word_acquire(os::FutexWord& word, std::uint32_t me, bool block, os::Timeout timeout) {
  if (lock_word_try(word, me)) return LockResult::acquired;
  if (!block) {
    return take_over_from_dead_owner(word, word.load(), me) ? LockResult::owner_died : LockResult::timed_out;
  }
  for (int i = 0; i < kSpins; ++i) {
    os::cpu_relax();
    if (word.load(std::memory_order_relaxed) == 0 && lock_word_try(word, me)) return LockResult::acquired;
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
