// Condition: waiters count themselves in, notify moves up to n of them to
// "handed a wake-up" and bumps the sequence, and each woken waiter takes one
// wake-up. Only a waiter that began waiting before the latest notify may
// take one: a process that starts waiting right after a notify (it could
// take the lock the moment the notifier let it go) cannot steal the wake-up
// of one that was waiting. A waiter whose timeout passes takes a pending
// wake-up if it may, else takes itself out of the count: so notify(n) wakes
// exactly n of the waiters of its moment, however many timed out before it.
// (Every waiter is either counted or owed a wake-up: the two counts always
// add up to the waiters still inside wait().)

#include "mproc/condition.hpp"

#include <algorithm>

#include "mproc/errors.hpp"
#include "os/timeout.hpp"
#include "shared/states.hpp"

namespace mproc {
namespace {

constexpr std::uint64_t kOneWaiter = std::uint64_t{1} << 32;
constexpr std::uint64_t kWakeupMask = kOneWaiter - 1;

std::uint64_t waiters(std::uint64_t counts) { return counts >> 32; }
std::uint64_t wakeups(std::uint64_t counts) { return counts & kWakeupMask; }

bool take_wakeup(std::atomic<std::uint64_t>& counts) {
  std::uint64_t seen = counts.load();
  while (wakeups(seen) > 0) {
    if (counts.compare_exchange_weak(seen, seen - 1)) return true;
  }
  return false;
}

// After a timeout: takes a pending wake-up if this waiter may (returns
// true: a notify came in time), else leaves the waiters (returns false).
bool take_wakeup_or_leave(std::atomic<std::uint64_t>& counts, bool may_take) {
  std::uint64_t seen = counts.load();
  for (;;) {
    if (may_take && wakeups(seen) > 0) {
      if (counts.compare_exchange_weak(seen, seen - 1)) return true;
    } else if (waiters(seen) > 0) {
      if (counts.compare_exchange_weak(seen, seen - kOneWaiter)) return false;
    } else {
      return false;  // unreachable while every waiter is counted
    }
  }
}

}  // namespace

Condition::Condition() : Condition(RLock()) {}

Condition::Condition(Lock lock) : lock_(std::move(lock)) {
  block_ = detail::allocate_block(detail::BlockKind::condition, sizeof(detail::ConditionState));
  state_ = static_cast<detail::ConditionState*>(detail::block_data(*block_));
}

Condition::Condition(RLock lock) : lock_(std::move(lock)) {
  block_ = detail::allocate_block(detail::BlockKind::condition, sizeof(detail::ConditionState));
  state_ = static_cast<detail::ConditionState*>(detail::block_data(*block_));
}

bool Condition::acquire(bool block) {
  return std::visit([&](auto& lock) { return lock.acquire(block); }, lock_);
}

void Condition::release() {
  std::visit([](auto& lock) { lock.release(); }, lock_);
}

bool Condition::held_by_caller() const {
  return std::visit([](const auto& lock) { return lock.held_by_caller(); }, lock_);
}

bool Condition::wait_until(std::optional<std::chrono::steady_clock::time_point> deadline) {
  if (!held_by_caller()) throw UsageError("mproc: Condition.wait: cannot wait on un-acquired lock");
  // Both under the lock, which notify() holds too.
  state_->counts.fetch_add(kOneWaiter);
  const std::uint32_t started = state_->sequence.load();
  std::uint32_t levels = 0;
  if (auto* rlock = std::get_if<RLock>(&lock_)) {
    levels = rlock->release_all();
  } else {
    std::get<Lock>(lock_).release();
  }
  bool woken = false;
  for (;;) {
    // Read the sequence before looking for a wake-up: a notify after the
    // look changes it, and the futex then does not sleep.
    std::uint32_t sequence = state_->sequence.load();
    bool notified_since_start = sequence != started;
    if (notified_since_start && take_wakeup(state_->counts)) {
      woken = true;
      break;
    }
    os::Timeout left;
    if (deadline) {
      left = std::max(std::chrono::nanoseconds(0), std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                       *deadline - std::chrono::steady_clock::now()));
    }
    if (left && left->count() == 0) {
      woken = take_wakeup_or_leave(state_->counts, notified_since_start);
      break;
    }
    (void)os::futex_wait(state_->sequence, sequence, left);
  }
  if (auto* rlock = std::get_if<RLock>(&lock_)) {
    rlock->reacquire(levels);
  } else {
    std::get<Lock>(lock_).reacquire();
  }
  return woken;
}

void Condition::notify(int n) {
  if (!held_by_caller()) throw UsageError("mproc: Condition.notify: cannot notify on un-acquired lock");
  if (n <= 0) return;
  std::uint64_t seen = state_->counts.load();
  std::uint64_t moved = 0;
  do {
    moved = std::min<std::uint64_t>(waiters(seen), static_cast<std::uint64_t>(n));
    if (moved == 0) return;
  } while (!state_->counts.compare_exchange_weak(seen, seen - moved * kOneWaiter + moved));
  state_->sequence.fetch_add(1);
  os::futex_wake(state_->sequence, static_cast<int>(moved));
}

void Condition::save(Encoder& encoder) const {
  encoder.write(static_cast<std::uint8_t>(lock_.index()));
  std::visit([&](const auto& lock) { lock.save(encoder); }, lock_);
  detail::save_block(encoder, *block_);
}

void Condition::load(Decoder& decoder) {
  std::uint8_t kind = 0;
  decoder(kind);
  if (kind == 0) {
    RLock lock;
    lock.load(decoder);
    lock_ = std::move(lock);
  } else if (kind == 1) {
    Lock lock;
    lock.load(decoder);
    lock_ = std::move(lock);
  } else {
    throw DecodeError("mproc: a Condition's lock is neither a Lock nor an RLock");
  }
  block_ = detail::load_block(decoder, detail::BlockKind::condition, sizeof(detail::ConditionState));
  state_ = static_cast<detail::ConditionState*>(detail::block_data(*block_));
}

}  // namespace mproc
