// mproc/timeout.hpp
//
// Timeouts are std::chrono durations (`500ms`, `std::chrono::duration<double>(0.5)`).
// Python's `timeout=None` is the overload without one, or mproc::forever
// where a call without a timeout means something else (Connection::poll()
// does not wait at all, as in Python).

#pragma once

#include <chrono>
#include <optional>

namespace mproc {

// Forever
//
// "No time limit", for the calls whose overload without a timeout means zero.
struct Forever {};
inline constexpr Forever forever{};

namespace detail {

// A duration as the nanoseconds the os layer waits: negative is zero, and
// anything beyond about 146 years is "forever" (std::nullopt).
template <class Rep, class Period>
std::optional<std::chrono::nanoseconds> to_timeout(std::chrono::duration<Rep, Period> timeout) {
  using namespace std::chrono;
  if (timeout <= duration<Rep, Period>::zero()) return nanoseconds(0);
  if (duration<double>(timeout) >= duration<double>(hours(24 * 365 * 146))) return std::nullopt;
  return ceil<nanoseconds>(duration<double, std::nano>(timeout));
}

// The moment a timeout ends (std::nullopt: never), and whether it has come,
// for calls that wait several times under one timeout.
inline std::optional<std::chrono::steady_clock::time_point> deadline_after(
    std::optional<std::chrono::nanoseconds> timeout) {
  if (!timeout) return std::nullopt;
  return std::chrono::steady_clock::now() + *timeout;
}
inline bool deadline_passed(std::optional<std::chrono::steady_clock::time_point> deadline) {
  return deadline && std::chrono::steady_clock::now() >= *deadline;
}

}  // namespace detail
}  // namespace mproc
