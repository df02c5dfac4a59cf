#include "os/pidfd.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/syscall.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace mproc::os {

Result<UniqueFd> pidfd_open(int pid) noexcept {
  // pidfds are close-on-exec from birth.
  long fd = MPROC_SYSCALL(syscall)(SYS_pidfd_open, pid, 0);
  if (fd < 0) return {{}, Error::last("pidfd_open")};
  return {UniqueFd(static_cast<int>(fd)), {}};
}

Error pidfd_send_signal(int pidfd, int signal) noexcept {
  if (MPROC_SYSCALL(syscall)(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0) != 0) {
    return Error::last("pidfd_send_signal");
  }
  return {};
}

Result<std::optional<int>> reap(int pidfd, bool block) noexcept {
  siginfo_t info{};
  int options = WEXITED | (block ? 0 : WNOHANG);
  for (;;) {
    if (MPROC_SYSCALL(waitid)(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, options) == 0) break;
    if (errno != EINTR) return {std::nullopt, Error::last("waitid")};
  }
  if (info.si_pid == 0) return {std::nullopt, {}};  // WNOHANG and still running
  if (info.si_code == CLD_EXITED) return {info.si_status, {}};
  return {-info.si_status, {}};  // CLD_KILLED or CLD_DUMPED: the signal
}

}  // namespace mproc::os
