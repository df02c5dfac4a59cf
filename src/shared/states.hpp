// The layouts of the synchronization primitives in shared memory. Each
// lives in an arena block (arena.hpp), zero-filled when allocated, so zero
// is every primitive's natural initial state.

#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "mproc/detail/lock_state.hpp"
#include "os/futex.hpp"

namespace mproc::detail {

// LockState and RLockState are in mproc/detail/lock_state.hpp, for the
// inline fast paths of lock.hpp.

struct SemaphoreState {
  os::FutexWord value;
  std::atomic<std::uint32_t> sleepers;
  std::uint32_t bounded;  // 1 for a BoundedSemaphore
  std::uint32_t maximum;  // its initial value
};

// Counts the caller among a primitive's sleepers while it lives. Sleepers
// announce themselves before their last look at the state; whoever changes
// the state changes it before looking for sleepers: one sees the other.
class SleeperCount {
 public:
  explicit SleeperCount(std::atomic<std::uint32_t>& sleepers) : sleepers_(sleepers) { sleepers_.fetch_add(1); }
  ~SleeperCount() { sleepers_.fetch_sub(1); }
  SleeperCount(const SleeperCount&) = delete;
  SleeperCount& operator=(const SleeperCount&) = delete;

 private:
  std::atomic<std::uint32_t>& sleepers_;
};

struct EventState {
  os::FutexWord flag;
  std::atomic<std::uint32_t> sleepers;
};

// A Condition's waiters, each in a slot of its own, as threading.Condition
// keeps a queue of waiters: notify(n) hands its wake-ups to the n oldest
// waiting slots, so a wake-up cannot go to a waiter that came after it.
inline constexpr std::uint32_t kSlotFree = 0;
inline constexpr std::uint32_t kSlotWaiting = 1;
inline constexpr std::uint32_t kSlotNotified = 2;

struct ConditionSlot {
  os::FutexWord state;   // what the slot's waiter sleeps on
  std::uint64_t ticket;  // arrival order, written under the lock
};

inline constexpr std::size_t kConditionSlots = 255;

struct ConditionState {
  std::atomic<std::uint32_t> waiting;  // slots in state waiting
  std::atomic<std::uint32_t> used;     // slots [0, used) have ever been taken
  std::uint64_t next_ticket;           // changed under the lock
  ConditionSlot slots[kConditionSlots];
};

// A Barrier's round, changed only under its condition's lock; atomic so
// that parties(), n_waiting() and broken() can read it without the lock.
enum class BarrierPhase : std::int32_t {
  filling = 0,  // parties are arriving
  draining,     // the round is complete; parties are leaving wait()
  resetting,    // reset() while parties waited; they leave with an error
  broken,
};

struct BarrierState {
  std::atomic<std::int32_t> parties;
  std::atomic<std::int32_t> count;  // parties inside wait()
  std::atomic<BarrierPhase> phase;
};

}  // namespace mproc::detail
