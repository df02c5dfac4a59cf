// Lock and RLock over the lock word (lock_word.hpp).

#include "mproc/lock.hpp"

#include "mproc/errors.hpp"
#include "runtime/runtime.hpp"
#include "shared/lock_word.hpp"
#include "shared/states.hpp"

namespace mproc {
namespace {

using detail::LockResult;


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

// Takes the word as this process (the free case was tried inline already).
LockResult take(os::FutexWord& word, bool block, std::optional<std::chrono::nanoseconds> timeout) {
  return detail::lock_word_acquire(word, detail::lock_owner_id(), block, timeout);
}

template <class State>
State* state_of(const std::shared_ptr<detail::SharedBlock>& block) {
  return static_cast<State*>(detail::block_data(*block));
}

}  // namespace

namespace detail {

std::uint32_t process_id_slow() {
  (void)Runtime::get();  // sets the cached id when it starts
  return cached_process_id.load(std::memory_order_relaxed);
}

void wake_lock_sleeper(std::atomic<std::uint32_t>& word) { os::futex_wake(word, 1); }

}  // namespace detail

Lock::Lock()
    : block_(detail::allocate_block(detail::BlockKind::lock, sizeof(detail::LockState))),
      state_(state_of<detail::LockState>(block_)) {}

LockResult Lock::take_for_caller(bool block, std::optional<std::chrono::nanoseconds> timeout) {
  LockResult result = take(state_->word, block, timeout);
  if (result != LockResult::timed_out) {
    state_->owner_thread.store(detail::thread_token(), std::memory_order_relaxed);
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

void Lock::release_slow(std::uint32_t old) {
  if (old == 0) throw UsageError("mproc: Lock.release: semaphore or lock released too many times (it was not held)");
  detail::wake_lock_sleeper(state_->word);
}

void Lock::save(Encoder& encoder) const { detail::save_block(encoder, *block_); }

void Lock::load(Decoder& decoder) {
  block_ = detail::load_block(decoder, detail::BlockKind::lock, sizeof(detail::LockState));
  state_ = state_of<detail::LockState>(block_);
}

RLock::RLock()
    : block_(detail::allocate_block(detail::BlockKind::rlock, sizeof(detail::RLockState))),
      state_(state_of<detail::RLockState>(block_)) {}


LockResult RLock::take_for_caller(bool block, std::optional<std::chrono::nanoseconds> timeout,
                                  std::uint32_t levels) {
  LockResult result = take(state_->word, block, timeout);
  if (result != LockResult::timed_out) {
    state_->owner_thread.store(detail::thread_token(), std::memory_order_relaxed);
    state_->levels.store(levels, std::memory_order_relaxed);
  }
  return result;
}

bool RLock::acquire_for(bool block, std::optional<std::chrono::nanoseconds> timeout) {
  if (take_again_or_free()) return true;
  LockResult result = take_for_caller(block, timeout, 1);
  if (result == LockResult::timed_out) return false;
  if (result == LockResult::owner_died) {
    release();
    throw_owner_died("RLock.acquire");
  }
  return true;
}

void RLock::release_unheld() { throw UsageError("mproc: RLock.release: cannot release un-acquired lock"); }

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
