// Condition: each waiter takes a slot of its own (under the lock, with an
// arrival ticket) and sleeps on the slot's word; notify(n) marks the n
// oldest waiting slots notified and wakes each. A waiter whose timeout
// passes frees its slot with a compare-and-swap from waiting, which fails
// if a notify got there first: then it was notified in time. So notify(n)
// wakes exactly n of the waiters of its moment (fewer if fewer wait), the
// ones waiting longest, and a wake-up can never go to a waiter that began
// waiting after the notify, however late the notified one runs.
//
// A waiter killed inside wait() keeps its slot: the notify that picks it
// is lost on it (as in Python), and the slot stays taken.

#include "mproc/condition.hpp"

#include <algorithm>
#include <string>

#include "mproc/errors.hpp"
#include "os/timeout.hpp"
#include "shared/states.hpp"

namespace mproc {
namespace {

using detail::ConditionSlot;
using detail::ConditionState;
using detail::kSlotFree;
using detail::kSlotNotified;
using detail::kSlotWaiting;

// Takes a free slot for the caller, who holds the lock (as notify does).
ConditionSlot& take_slot(ConditionState& state) {
  for (std::size_t i = 0; i < detail::kConditionSlots; ++i) {
    ConditionSlot& slot = state.slots[i];
    if (slot.state.load(std::memory_order_acquire) != kSlotFree) continue;
    slot.ticket = state.next_ticket++;
    slot.state.store(kSlotWaiting, std::memory_order_release);
    state.waiting.fetch_add(1);
    if (state.used.load(std::memory_order_relaxed) <= i) state.used.store(static_cast<std::uint32_t>(i + 1));
    return slot;
  }
  throw ProcessError("mproc: Condition.wait: more than " + std::to_string(detail::kConditionSlots) +
                     " processes and threads wait on this condition");
}

// The waiting slot that arrived first, or null.
ConditionSlot* oldest_waiting(ConditionState& state) {
  ConditionSlot* oldest = nullptr;
  std::uint32_t used = state.used.load();
  for (std::uint32_t i = 0; i < used; ++i) {
    ConditionSlot& slot = state.slots[i];
    if (slot.state.load(std::memory_order_acquire) != kSlotWaiting) continue;
    if (oldest == nullptr || slot.ticket < oldest->ticket) oldest = &slot;
  }
  return oldest;
}

// Hands a wake-up to a waiting slot; false if its waiter left (timed out).
bool notify_slot(ConditionState& state, ConditionSlot& slot) {
  std::uint32_t expected = kSlotWaiting;
  if (!slot.state.compare_exchange_strong(expected, kSlotNotified)) return false;
  state.waiting.fetch_sub(1);
  os::futex_wake(slot.state, 1);
  return true;
}

// Sleeps on `slot` until notified (true) or the deadline passes (false).
bool sleep_in_slot(ConditionState& state, ConditionSlot& slot,
                   std::optional<std::chrono::steady_clock::time_point> deadline) {
  for (;;) {
    if (slot.state.load(std::memory_order_acquire) == kSlotNotified) break;
    os::Timeout left;
    if (deadline) {
      left = std::max(std::chrono::nanoseconds(0), std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                       *deadline - std::chrono::steady_clock::now()));
    }
    if (left && left->count() == 0) {
      std::uint32_t expected = kSlotWaiting;
      if (slot.state.compare_exchange_strong(expected, kSlotFree)) {
        state.waiting.fetch_sub(1);
        return false;  // left before any notify: the slot is free again
      }
      break;  // a notify came first
    }
    (void)os::futex_wait(slot.state, kSlotWaiting, left);
  }
  slot.state.store(kSlotFree, std::memory_order_release);
  return true;
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
  ConditionSlot& slot = take_slot(*state_);
  std::uint32_t levels = 0;
  if (auto* rlock = std::get_if<RLock>(&lock_)) {
    levels = rlock->release_all();
  } else {
    std::get<Lock>(lock_).release();
  }
  bool woken = sleep_in_slot(*state_, slot, deadline);
  if (auto* rlock = std::get_if<RLock>(&lock_)) {
    rlock->reacquire(levels);
  } else {
    std::get<Lock>(lock_).reacquire();
  }
  return woken;
}

void Condition::notify(int n) {
  if (!held_by_caller()) throw UsageError("mproc: Condition.notify: cannot notify on un-acquired lock");
  while (n > 0 && state_->waiting.load() > 0) {
    ConditionSlot* slot = oldest_waiting(*state_);
    if (slot == nullptr) return;
    if (notify_slot(*state_, *slot)) --n;  // else it timed out meanwhile: the next oldest
  }
}

void Condition::notify_all() {
  if (!held_by_caller()) throw UsageError("mproc: Condition.notify_all: cannot notify on un-acquired lock");
  std::uint32_t used = state_->used.load();
  for (std::uint32_t i = 0; i < used && state_->waiting.load() > 0; ++i) {
    ConditionSlot& slot = state_->slots[i];
    if (slot.state.load(std::memory_order_acquire) == kSlotWaiting) notify_slot(*state_, slot);
  }
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
