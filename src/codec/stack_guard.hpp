// Recursion in the codec follows the data (a tree nested as deep as the
// message says), so besides DecodeLimits::max_depth it checks the stack
// itself: user types may be large enough to exhaust a small thread stack
// well before the depth limit.

#pragma once

namespace mproc::detail {

// Whether the calling thread has less than its reserve (128 KiB, or a quarter
// of a smaller stack) of stack left.
bool stack_nearly_exhausted() noexcept;

}  // namespace mproc::detail
