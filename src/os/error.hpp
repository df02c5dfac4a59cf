// The os layer's error vocabulary. Functions in mproc::os never throw: they
// return an Error (or a Result carrying one) that names the failed call, and
// the layers above turn it into std::system_error (see src/common/raise.hpp).

#pragma once

#include <cerrno>
#include <system_error>

namespace mproc::os {

// A failed system call: its errno as a std::error_code and the call's name.
// Converts to true when it holds an error, as std::error_code does.
struct [[nodiscard]] Error {
  std::error_code code;
  const char* call = "";

  explicit operator bool() const noexcept { return static_cast<bool>(code); }

  // Captures the current errno for `call`.
  static Error last(const char* call) noexcept {
    return Error{std::error_code(errno, std::system_category()), call};
  }
  static Error of(int errnum, const char* call) noexcept {
    return Error{std::error_code(errnum, std::system_category()), call};
  }
};

// A value or the Error that prevented it. `value` is meaningful only when ok().
template <class T>
struct [[nodiscard]] Result {
  T value{};
  Error error;

  bool ok() const noexcept { return !error; }
};

}  // namespace mproc::os
