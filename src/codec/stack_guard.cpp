#include "codec/stack_guard.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "os/process.hpp"

namespace mproc::detail {
namespace {

// The lowest address the stack may reach before the guard trips, for the
// calling thread; 0 (never trips) if the bounds cannot be read.
std::uintptr_t stack_limit() noexcept {
  auto bounds = os::current_thread_stack();
  if (!bounds.ok()) return 0;
  std::size_t reserve = std::min<std::size_t>(128 * 1024, bounds.value.size / 4);
  return bounds.value.low + reserve;
}

}  // namespace

bool stack_nearly_exhausted() noexcept {
  thread_local const std::uintptr_t limit = stack_limit();
  // The frame address, not a local's: AddressSanitizer may put locals on a
  // heap-allocated fake stack.
  return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)) < limit;
}

}  // namespace mproc::detail
