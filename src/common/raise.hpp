// Turning the os layer's errors into exceptions, at the boundary above it.

#pragma once

#include <string_view>
#include <utility>

#include "os/error.hpp"

namespace mproc::detail {

// Throws std::system_error for `error`, its message naming the failed call
// and `context` (what mproc was doing): "socketpair (Pipe): Too many open files".
[[noreturn]] void raise(const os::Error& error, std::string_view context);

// The value of `result`, or the exception raise() throws for its error.
template <class T>
T unwrap(os::Result<T>&& result, std::string_view context) {
  if (!result.ok()) raise(result.error, context);
  return std::move(result.value);
}

inline void check(const os::Error& error, std::string_view context) {
  if (error) raise(error, context);
}

}  // namespace mproc::detail
