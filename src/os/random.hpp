// Random numbers from the kernel, for identifiers that must not collide.

#pragma once

#include <cstdint>

#include "os/error.hpp"

namespace mproc::os {

// 64 random bits (getrandom).
Result<std::uint64_t> random_u64() noexcept;

}  // namespace mproc::os
