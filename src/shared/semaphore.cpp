// Semaphore and BoundedSemaphore: a futex word holding the count, and a
// count of sleepers so that release() makes a system call only when someone
// sleeps.

#include "mproc/semaphore.hpp"

#include <limits>
#include <string>

#include "mproc/errors.hpp"
#include "os/timeout.hpp"
#include "shared/states.hpp"

namespace mproc {
namespace {

constexpr int kSpins = 100;

// Takes one unit if there is one.
bool try_take(os::FutexWord& value) {
  std::uint32_t seen = value.load(std::memory_order_relaxed);
  while (seen > 0) {
    if (value.compare_exchange_weak(seen, seen - 1, std::memory_order_acquire, std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

}  // namespace

Semaphore::Semaphore(int value) : Semaphore(value, false) {}

Semaphore::Semaphore(int value, bool bounded) {
  if (value < 0) throw UsageError("mproc: Semaphore: the initial value must be >= 0, not " + std::to_string(value));
  block_ = detail::allocate_block(detail::BlockKind::semaphore, sizeof(detail::SemaphoreState));
  state_ = static_cast<detail::SemaphoreState*>(detail::block_data(*block_));
  state_->value.store(static_cast<std::uint32_t>(value));
  state_->bounded = bounded ? 1 : 0;
  state_->maximum = static_cast<std::uint32_t>(value);
}

bool Semaphore::acquire_for(bool block, std::optional<std::chrono::nanoseconds> timeout) {
  if (try_take(state_->value)) return true;
  if (!block) return false;
  for (int i = 0; i < kSpins; ++i) {
    os::cpu_relax();
    if (state_->value.load(std::memory_order_relaxed) > 0 && try_take(state_->value)) return true;
  }
  os::Deadline deadline(timeout);
  detail::SleeperCount sleeping(state_->sleepers);
  for (;;) {
    if (try_take(state_->value)) return true;
    os::Timeout left = deadline.remaining();
    if (left && left->count() == 0) return false;
    (void)os::futex_wait(state_->value, 0, left);
  }
}

void Semaphore::release() {
  std::uint32_t seen = state_->value.load(std::memory_order_relaxed);
  for (;;) {
    if (state_->bounded != 0 && seen >= state_->maximum) {
      throw UsageError("mproc: BoundedSemaphore.release: semaphore or lock released too many times");
    }
    if (seen == static_cast<std::uint32_t>(std::numeric_limits<int>::max())) {
      throw UsageError("mproc: Semaphore.release: the count would overflow");
    }
    if (state_->value.compare_exchange_weak(seen, seen + 1, std::memory_order_release, std::memory_order_relaxed)) {
      break;
    }
  }
  if (state_->sleepers.load() > 0) os::futex_wake(state_->value, 1);
}

int Semaphore::get_value() const noexcept { return static_cast<int>(state_->value.load(std::memory_order_relaxed)); }

void Semaphore::save(Encoder& encoder) const { detail::save_block(encoder, *block_); }

void Semaphore::load(Decoder& decoder) {
  block_ = detail::load_block(decoder, detail::BlockKind::semaphore, sizeof(detail::SemaphoreState));
  state_ = static_cast<detail::SemaphoreState*>(detail::block_data(*block_));
}

}  // namespace mproc
