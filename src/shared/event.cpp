// Event: a futex word holding the flag, and a count of sleepers so that
// set() makes a system call only when someone sleeps.

#include "mproc/event.hpp"

#include "os/timeout.hpp"
#include "shared/states.hpp"

namespace mproc {
namespace {

constexpr int kSpins = 100;

}  // namespace

Event::Event()
    : block_(detail::allocate_block(detail::BlockKind::event, sizeof(detail::EventState))),
      state_(static_cast<detail::EventState*>(detail::block_data(*block_))) {}

void Event::set() {
  state_->flag.store(1);
  // After the store: see SleeperCount.
  if (state_->sleepers.load() > 0) os::futex_wake_all(state_->flag);
}

void Event::clear() { state_->flag.store(0); }

bool Event::is_set() const noexcept { return state_->flag.load() != 0; }

bool Event::wait_for(std::optional<std::chrono::nanoseconds> timeout) {
  if (is_set()) return true;
  if (timeout && timeout->count() == 0) return false;
  for (int i = 0; i < kSpins; ++i) {
    os::cpu_relax();
    if (state_->flag.load(std::memory_order_relaxed) != 0) return true;
  }
  os::Deadline deadline(timeout);
  detail::SleeperCount sleeping(state_->sleepers);
  for (;;) {
    if (is_set()) return true;
    os::Timeout left = deadline.remaining();
    if (left && left->count() == 0) return false;
    (void)os::futex_wait(state_->flag, 0, left);
  }
}

void Event::save(Encoder& encoder) const { detail::save_block(encoder, *block_); }

void Event::load(Decoder& decoder) {
  block_ = detail::load_block(decoder, detail::BlockKind::event, sizeof(detail::EventState));
  state_ = static_cast<detail::EventState*>(detail::block_data(*block_));
}

}  // namespace mproc
