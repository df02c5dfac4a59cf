// Timeouts for the os layer's blocking calls: nanoseconds, or none (wait
// forever), turned into a deadline so that retries after EINTR wait only for
// what is left.

#pragma once

#include <chrono>
#include <optional>

namespace mproc::os {

// How long a call may block; std::nullopt blocks until it succeeds.
using Timeout = std::optional<std::chrono::nanoseconds>;

class Deadline {
 public:
  explicit Deadline(Timeout timeout)
      : forever_(!timeout.has_value()),
        at_(forever_ ? std::chrono::steady_clock::time_point::max()
                     : std::chrono::steady_clock::now() + *timeout) {}

  bool forever() const { return forever_; }

  // What is left, never negative; std::nullopt when there is no deadline.
  Timeout remaining() const {
    if (forever_) return std::nullopt;
    auto left = at_ - std::chrono::steady_clock::now();
    return std::max(std::chrono::nanoseconds(0),
                    std::chrono::duration_cast<std::chrono::nanoseconds>(left));
  }

  bool expired() const { return !forever_ && std::chrono::steady_clock::now() >= at_; }

 private:
  bool forever_;
  std::chrono::steady_clock::time_point at_;
};

}  // namespace mproc::os
