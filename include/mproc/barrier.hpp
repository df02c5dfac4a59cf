// mproc/barrier.hpp
//
// Barrier: Python's multiprocessing.Barrier in shared memory. `parties`
// processes (or threads) call wait(); all of them return together once the
// last one arrives, each with a distinct index, and the barrier is ready for
// the next round. A handle, like Lock.
//
// Example:
//
//   void ready() { std::puts("everyone is here"); }
//
//   mproc::Barrier barrier(3, ready);  // ready() runs once per round
//   // in each of 3 processes:
//   if (barrier.wait() == 0) std::puts("I arrived first");
//
// A round ends early, with BrokenBarrierError in every waiting party, when
// one of them times out, when abort() or reset() is called, or when the
// action throws; a broken barrier stays broken until reset().

#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include "mproc/codec.hpp"
#include "mproc/condition.hpp"
#include "mproc/detail/shared_block.hpp"
#include "mproc/function.hpp"
#include "mproc/timeout.hpp"

namespace mproc {

namespace detail {
struct BarrierState;
}

class Barrier {
 public:
  // An empty handle, to assign or decode a barrier into; any other use is a
  // UsageError.
  Barrier() = default;

  // A barrier for `parties` (at least 1; std::invalid_argument otherwise).
  // `action`, if given, is run by the last party to arrive, before any party
  // is released; it crosses to other processes as a Function does.
  // `timeout` is what wait() without a timeout waits at most.
  explicit Barrier(int parties, Function<void()> action = nullptr);
  template <class Rep, class Period>
  Barrier(int parties, Function<void()> action, std::chrono::duration<Rep, Period> timeout)
      : Barrier(parties, std::move(action)) {
    default_timeout_ = detail::to_timeout(timeout);
  }

  // Barrier::wait()
  //
  // Waits until all parties have called wait(), at most `timeout` (the
  // barrier's default timeout when none is given). Returns this party's
  // arrival index, 0 for the first to arrive, parties() - 1 for the last.
  // Throws BrokenBarrierError if the barrier is or becomes broken while
  // waiting, including by this party's own timeout (which breaks it for
  // everyone). The party that runs the action gets the action's exception.
  int wait() { return wait_for(default_timeout_); }
  template <class Rep, class Period>
  int wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_for(detail::to_timeout(timeout));
  }

  // Barrier::reset()
  //
  // Returns the barrier to its initial, empty state. Parties waiting now get
  // BrokenBarrierError.
  void reset();

  // Barrier::abort()
  //
  // Breaks the barrier: waiting parties, and later ones until reset(), get
  // BrokenBarrierError.
  void abort();

  // How many parties a round needs.
  int parties() const;

  // How many parties are waiting in the current round.
  int n_waiting() const;

  // Whether the barrier is broken.
  bool broken() const;

  bool operator==(const Barrier& other) const noexcept { return block_ == other.block_; }

  void save(Encoder& encoder) const;
  void load(Decoder& decoder);

 private:
  int wait_for(std::optional<std::chrono::nanoseconds> timeout);
  void wait_for_round_to_end(std::optional<std::chrono::steady_clock::time_point> deadline);
  void release_round();
  void break_barrier();
  void leave_round();
  detail::BarrierState& state() const;

  Condition condition_;
  Function<void()> action_;
  std::optional<std::chrono::nanoseconds> default_timeout_;
  std::shared_ptr<detail::SharedBlock> block_;
  detail::BarrierState* state_ = nullptr;
};

}  // namespace mproc
