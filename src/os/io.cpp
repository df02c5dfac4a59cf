#include "os/io.hpp"

#include <unistd.h>

#include "os/syscall.hpp"

namespace mproc::os {

Error write_all(int fd, std::span<const std::byte> bytes) noexcept {
  while (!bytes.empty()) {
    ssize_t n = MPROC_SYSCALL(write)(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::last("write");
    }
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
  return {};
}

Result<std::size_t> read_some(int fd, std::span<std::byte> buffer) noexcept {
  for (;;) {
    ssize_t n = MPROC_SYSCALL(read)(fd, buffer.data(), buffer.size());
    if (n >= 0) return {static_cast<std::size_t>(n), {}};
    if (errno != EINTR) return {0, Error::last("read")};
  }
}

Result<std::size_t> read_full(int fd, std::span<std::byte> buffer) noexcept {
  std::size_t done = 0;
  while (done < buffer.size()) {
    auto got = read_some(fd, buffer.subspan(done));
    if (!got.ok()) return {done, got.error};
    if (got.value == 0) break;
    done += got.value;
  }
  return {done, {}};
}

}  // namespace mproc::os
