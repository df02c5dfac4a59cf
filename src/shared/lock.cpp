// Lock and RLock over the lock word (lock_word.hpp).

#include "mproc/lock.hpp"

#include "mproc/errors.hpp"
#include "runtime/runtime.hpp"
#include "shared/lock_word.hpp"
#include "shared/states.hpp"

namespace mproc {
namespace {

using detail::LockResult;

std::uint32_t me() { return static_cast<std::uint32_t>(detail::Runtime::get().pid()); }

[[noreturn]] void throw_owner_died(const char* what) {
  throw OwnerDiedError(std::string("mproc: ") + what +
                       ": the process holding it died; it is released now, but what it protected may be "
                       "half-updated");
}

// For Condition.wait(), whose caller holds the lock again however wait()
// ends (as Python's does), so that a scoped lock around it stays right.
[[noreturn]] void throw_owner_died_while_waiting() {
  throw OwnerDiedError(
      "mproc: Condition.wait: the process holding the lock died; the caller holds it again, but what it "
      "protected may be half-updated");
}

// Takes the word as this process; the free case stays inline.
LockResult take(os::FutexWord& word, bool block, std::optional<std::chrono::nanoseconds> timeout) {
  std::uint32_t pid = me();
  if (detail::lock_word_try(word, pid)) return LockResult::acquired;
  return detail::lock_word_acquire(word, pid, block, timeout);
}

// Whether the word is held by this process and `owner_thread` is the caller.
bool owned_by_caller(const os::FutexWord& word, const std::atomic<std::uint64_t>& owner_thread) {
  return detail::lock_owner(word.load()) == static_cast<int>(me()) &&
         owner_thread.load(std::memory_order_relaxed) == os::current_thread_token();
}

template <class State>
State* state_of(const std::shared_ptr<detail::SharedBlock>& block) {
  return static_cast<State*>(detail::block_data(*block));
}

}  // namespace

Lock::Lock()
    : block_(detail::allocate_block(detail::BlockKind::lock, sizeof(detail::LockState))),
      state_(state_of<detail::LockState>(block_)) {}

LockResult Lock::take_for_caller(bool block, std::optional<std::chrono::nanoseconds> timeout) {
  LockResult result = take(state_->word, block, timeout);
  if (result != LockResult::timed_out) {
    state_->owner_thread.store(os::current_thread_token(), std::memory_order_relaxed);
  }
  return result;
}

bool Lock::acquire_for(bool block, std::optional<std::chrono::nanoseconds> timeout) {
  LockResult result = take_for_caller(block, timeout);
  if (result == LockResult::timed_out) return false;
  if (result == LockResult::owner_died) {
    release();
    throw_owner_died("Lock.acquire");
  }
  return true;
}

void Lock::reacquire() {
  if (take_for_caller(true, std::nullopt) == LockResult::owner_died) throw_owner_died_while_waiting();
}

void Lock::release() {
  state_->owner_thread.store(0, std::memory_order_relaxed);
  if (detail::lock_word_release(state_->word) == 0) {
    throw UsageError("mproc: Lock.release: semaphore or lock released too many times (it was not held)");
  }
}

bool Lock::held_by_caller() const noexcept { return owned_by_caller(state_->word, state_->owner_thread); }

void Lock::save(Encoder& encoder) const { detail::save_block(encoder, *block_); }

void Lock::load(Decoder& decoder) {
  block_ = detail::load_block(decoder, detail::BlockKind::lock, sizeof(detail::LockState));
  state_ = state_of<detail::LockState>(block_);
}

RLock::RLock()
    : block_(detail::allocate_block(detail::BlockKind::rlock, sizeof(detail::RLockState))),
      state_(state_of<detail::RLockState>(block_)) {}

bool RLock::held_by_caller() const noexcept { return owned_by_caller(state_->word, state_->owner_thread); }

LockResult RLock::take_for_caller(bool block, std::optional<std::chrono::nanoseconds> timeout,
                                  std::uint32_t levels) {
  LockResult result = take(state_->word, block, timeout);
  if (result != LockResult::timed_out) {
    state_->owner_thread.store(os::current_thread_token(), std::memory_order_relaxed);
    state_->levels.store(levels, std::memory_order_relaxed);
  }
  return result;
}

bool RLock::acquire_for(bool block, std::optional<std::chrono::nanoseconds> timeout) {
  if (held_by_caller()) {
    state_->levels.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  LockResult result = take_for_caller(block, timeout, 1);
  if (result == LockResult::timed_out) return false;
  if (result == LockResult::owner_died) {
    release();
    throw_owner_died("RLock.acquire");
  }
  return true;
}

void RLock::release() {
  if (!held_by_caller()) throw UsageError("mproc: RLock.release: cannot release un-acquired lock");
  if (state_->levels.fetch_sub(1, std::memory_order_relaxed) > 1) return;
  state_->owner_thread.store(0, std::memory_order_relaxed);
  detail::lock_word_release(state_->word);
}

std::uint32_t RLock::release_all() {
  std::uint32_t levels = state_->levels.load(std::memory_order_relaxed);
  state_->levels.store(1, std::memory_order_relaxed);
  release();
  return levels;
}

void RLock::reacquire(std::uint32_t levels) {
  if (take_for_caller(true, std::nullopt, levels) == LockResult::owner_died) throw_owner_died_while_waiting();
}

void RLock::save(Encoder& encoder) const { detail::save_block(encoder, *block_); }

void RLock::load(Decoder& decoder) {
  block_ = detail::load_block(decoder, detail::BlockKind::rlock, sizeof(detail::RLockState));
  state_ = state_of<detail::RLockState>(block_);
}

}  // namespace mproc
