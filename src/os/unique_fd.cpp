#include "mproc/unique_fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <system_error>

#include "os/syscall.hpp"

namespace mproc {

void UniqueFd::reset(int fd) noexcept {
  if (fd_ >= 0) {
    // Don't retry close after EINTR: on Linux the descriptor is already
    // released, and a retry could close one that another thread just got.
    (void)MPROC_SYSCALL(close)(fd_);
  }
  fd_ = fd;
}

UniqueFd UniqueFd::dup() const {
  int copy = MPROC_SYSCALL(fcntl)(fd_, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) throw std::system_error(errno, std::system_category(), "fcntl(F_DUPFD_CLOEXEC)");
  return UniqueFd(copy);
}

}  // namespace mproc
