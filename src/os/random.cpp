#include "os/random.hpp"

#include <sys/random.h>

#include "os/syscall.hpp"

namespace mproc::os {

Result<std::uint64_t> random_u64() noexcept {
  std::uint64_t value = 0;
  ssize_t got;
  do {
    got = MPROC_SYSCALL(getrandom)(&value, sizeof(value), 0);
  } while (got < 0 && errno == EINTR);
  if (got != static_cast<ssize_t>(sizeof(value))) return {0, Error::last("getrandom")};
  return {value, {}};
}

}  // namespace mproc::os
