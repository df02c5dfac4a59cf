// Reading and writing whole buffers on descriptors, through EINTR and short
// transfers.

#pragma once

#include <cstddef>
#include <span>

#include "os/error.hpp"

namespace mproc::os {

// Writes all of `bytes` to `fd`, retrying after EINTR and short writes.
Error write_all(int fd, std::span<const std::byte> bytes) noexcept;

// Reads until `buffer` is full or end of file. The value is the number of
// bytes read: less than buffer.size() only at end of file.
Result<std::size_t> read_full(int fd, std::span<std::byte> buffer) noexcept;

// Reads what is available, at most buffer.size() bytes, retrying after EINTR.
// The value is 0 at end of file.
Result<std::size_t> read_some(int fd, std::span<std::byte> buffer) noexcept;

}  // namespace mproc::os
