// Condition: waiters count themselves in, notify moves up to n of them to
// "handed a wake-up", and each woken waiter takes one wake-up. A waiter whose
// timeout passes takes itself out of the count, or, if a notify already
// counted it, takes a wake-up instead: so notify(n) wakes exactly n of the
// waiters of its moment, however many timed out before it.

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

// After a timeout: leaves the waiters (returns false), or, if a notify
// already counted this waiter, takes its wake-up (returns true).
bool leave_or_take_wakeup(std::atomic<std::uint64_t>& counts) {
  std::uint64_t seen = counts.load();
  for (;;) {
    if (waiters(seen) > 0) {
      if (counts.compare_exchange_weak(seen, seen - kOneWaiter)) return false;
    } else if (wakeups(seen) > 0) {
      if (counts.compare_exchange_weak(seen, seen - 1)) return true;
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
  state_->counts.fetch_add(kOneWaiter);
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
    if (take_wakeup(state_->counts)) {
      woken = true;
      break;
    }
    os::Timeout left;
    if (deadline) {
      left = std::max(std::chrono::nanoseconds(0), std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                       *deadline - std::chrono::steady_clock::now()));
    }
    if (left && left->count() == 0) {
      woken = leave_or_take_wakeup(state_->counts);
      break;
    }
    (void)os::futex_wait(state_->sequence, sequence, left);
  }
  if (auto* rlock = std::get_if<RLock>(&lock_)) {
    rlock->reacquire(levels);
  } else {
    std::get<Lock>(lock_).acquire(true);
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
