// mproc/event.hpp
//
// Event: Python's multiprocessing.Event in shared memory, a flag that
// processes set, clear and wait for. A handle, like Lock.
//
// Example:
//
//   mproc::Event ready;
//   mproc::Process p([ready]() mutable { ready.wait(); std::puts("go"); });
//   p.start();
//   ready.set();

#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include "mproc/codec.hpp"
#include "mproc/detail/shared_block.hpp"
#include "mproc/timeout.hpp"

namespace mproc {

namespace detail {
struct EventState;
}

class Event {
 public:
  // A new event, not set.
  Event();

  // Event::set()
  //
  // Sets the flag and wakes every waiter.
  void set();

  // Event::clear()
  //
  // Clears the flag: later waits wait.
  void clear();

  bool is_set() const noexcept;

  // Event::wait()
  //
  // Waits until the flag is set, at most `timeout`; returns whether it is
  // set (false only when the timeout passed first).
  bool wait() { return wait_for(std::nullopt); }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_for(detail::to_timeout(timeout));
  }

  bool operator==(const Event& other) const noexcept { return block_ == other.block_; }

  void save(Encoder& encoder) const;
  void load(Decoder& decoder);

 private:
  bool wait_for(std::optional<std::chrono::nanoseconds> timeout);

  std::shared_ptr<detail::SharedBlock> block_;
  detail::EventState* state_ = nullptr;
};

}  // namespace mproc
