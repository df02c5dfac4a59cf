// Barrier: Python's round protocol (filling, draining, resetting, broken)
// over a Condition, with the round's state in shared memory. Waiting for the
// previous round to drain keeps a fast party from joining a round that
// slower parties of the last one are still leaving.

#include "mproc/barrier.hpp"

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <string>

#include "mproc/errors.hpp"
#include "shared/states.hpp"

namespace mproc {
namespace {

using detail::BarrierPhase;

// The condition's wait_for(), up to a deadline (none: without limit).
template <class Predicate>
bool wait_until(Condition& condition, Predicate predicate,
                std::optional<std::chrono::steady_clock::time_point> deadline) {
  if (!deadline) return condition.wait_for(predicate);
  return condition.wait_for(predicate, std::max(std::chrono::steady_clock::duration::zero(),
                                                *deadline - std::chrono::steady_clock::now()));
}

[[noreturn]] void throw_broken() { throw BrokenBarrierError("mproc: Barrier.wait: the barrier is broken"); }

int checked_parties(int parties) {
  if (parties < 1) {
    throw std::invalid_argument("mproc: Barrier: parties must be at least 1, not " + std::to_string(parties));
  }
  return parties;
}

}  // namespace

Barrier::Barrier(int parties, Function<void()> action)
    : condition_(Lock()),
      action_(std::move(action)),
      block_(detail::allocate_block(detail::BlockKind::barrier, sizeof(detail::BarrierState))),
      state_(static_cast<detail::BarrierState*>(detail::block_data(*block_))) {
  state_->parties.store(checked_parties(parties));
}

int Barrier::wait_for(std::optional<std::chrono::nanoseconds> timeout) {
  state();  // an empty handle cannot be used
  auto deadline = detail::deadline_after(timeout);
  std::unique_lock hold(condition_);
  // The previous round must have emptied first. Python waits for that
  // without a limit; a party killed while waiting never leaves, so the
  // caller's timeout bounds this wait too.
  auto round_open = [&] {
    BarrierPhase phase = state_->phase.load();
    return phase != BarrierPhase::draining && phase != BarrierPhase::resetting;
  };
  if (!wait_until(condition_, round_open, deadline)) {
    break_barrier();
    throw_broken();
  }
  if (state_->phase.load() == BarrierPhase::broken) throw_broken();
  int index = state_->count.fetch_add(1);
  try {
    if (index + 1 == state_->parties.load()) {
      release_round();
    } else {
      wait_for_round_to_end(deadline);
    }
  } catch (...) {
    leave_round();
    throw;
  }
  leave_round();
  return index;
}

void Barrier::release_round() {
  try {
    if (action_) action_();
  } catch (...) {
    break_barrier();
    throw;
  }
  state_->phase.store(BarrierPhase::draining);
  condition_.notify_all();
}

void Barrier::wait_for_round_to_end(std::optional<std::chrono::steady_clock::time_point> deadline) {
  auto round_ended = [&] { return state_->phase.load() != BarrierPhase::filling; };
  if (!wait_until(condition_, round_ended, deadline)) {
    break_barrier();  // a party that gives up ends the round for everyone
    throw_broken();
  }
  BarrierPhase phase = state_->phase.load();
  if (phase == BarrierPhase::broken || phase == BarrierPhase::resetting) throw_broken();
}

void Barrier::break_barrier() {
  state_->phase.store(BarrierPhase::broken);
  condition_.notify_all();
}

// The last party out of a drained or reset round opens the next one.
void Barrier::leave_round() {
  if (state_->count.fetch_sub(1) != 1) return;
  BarrierPhase phase = state_->phase.load();
  if (phase == BarrierPhase::draining || phase == BarrierPhase::resetting) {
    state_->phase.store(BarrierPhase::filling);
    condition_.notify_all();
  }
}

void Barrier::reset() {
  state();  // an empty handle cannot be used
  std::scoped_lock hold(condition_);
  if (state_->count.load() > 0) {
    // Waiting parties leave with an error; the last one out reopens.
    BarrierPhase phase = state_->phase.load();
    if (phase == BarrierPhase::filling || phase == BarrierPhase::broken) {
      state_->phase.store(BarrierPhase::resetting);
    }
  } else {
    state_->phase.store(BarrierPhase::filling);
  }
  condition_.notify_all();
}

void Barrier::abort() {
  state();  // an empty handle cannot be used
  std::scoped_lock hold(condition_);
  break_barrier();
}

detail::BarrierState& Barrier::state() const {
  if (state_ == nullptr) throw UsageError("mproc: Barrier: an empty handle (default-constructed) was used");
  return *state_;
}

int Barrier::parties() const { return state().parties.load(); }

int Barrier::n_waiting() const {
  const detail::BarrierState& shared = state();
  return shared.phase.load() == BarrierPhase::filling ? shared.count.load() : 0;
}

bool Barrier::broken() const { return state().phase.load() == BarrierPhase::broken; }

void Barrier::save(Encoder& encoder) const {
  state();  // an empty handle has nothing to send
  condition_.save(encoder);
  action_.save(encoder);
  encoder.write(default_timeout_.has_value());
  encoder.write(static_cast<std::int64_t>(default_timeout_ ? default_timeout_->count() : 0));
  detail::save_block(encoder, *block_);
}

void Barrier::load(Decoder& decoder) {
  condition_.load(decoder);
  action_.load(decoder);
  bool has_timeout = false;
  std::int64_t timeout_ns = 0;
  decoder.read(has_timeout);
  decoder.read(timeout_ns);
  if (timeout_ns < 0) throw DecodeError("mproc: a Barrier's timeout is negative");
  default_timeout_.reset();
  if (has_timeout) default_timeout_ = std::chrono::nanoseconds(timeout_ns);
  block_ = detail::load_block(decoder, detail::BlockKind::barrier, sizeof(detail::BarrierState));
  state_ = static_cast<detail::BarrierState*>(detail::block_data(*block_));
  if (state_->parties.load() < 1) throw DecodeError("mproc: a Barrier's shared state is not a barrier's");
}

}  // namespace mproc
