#include "os/futex.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fcntl.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "os/syscall.hpp"

namespace mproc::os {
namespace {

// The futex system call has no glibc wrapper; the word is passed as the
// address of its value, which std::atomic<uint32_t> holds as its only member.
long futex(const FutexWord& word, int op, std::uint32_t value, const timespec* timeout) noexcept {
  auto* address = const_cast<std::uint32_t*>(reinterpret_cast<const std::uint32_t*>(&word));
  return MPROC_SYSCALL(syscall)(SYS_futex, address, op, value, timeout, nullptr, 0);
}

timespec to_timespec(std::chrono::nanoseconds d) noexcept {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(d);
  return {static_cast<time_t>(seconds.count()), static_cast<long>((d - seconds).count())};
}

}  // namespace

Result<bool> futex_wait(const FutexWord& word, std::uint32_t expected, Timeout timeout) noexcept {
  timespec relative;
  if (timeout) {
    if (timeout->count() <= 0) return {word.load() != expected, {}};
    relative = to_timespec(*timeout);
  }
  if (futex(word, FUTEX_WAIT, expected, timeout ? &relative : nullptr) == 0) return {true, {}};
  switch (errno) {
    case EAGAIN:  // the word had changed
    case EINTR:
      return {true, {}};
    case ETIMEDOUT:
      return {false, {}};
    default:
      return {false, Error::last("futex(FUTEX_WAIT)")};
  }
}

int futex_wake(const FutexWord& word, int count) noexcept {
  long woken = futex(word, FUTEX_WAKE, static_cast<std::uint32_t>(count), nullptr);
  return woken < 0 ? 0 : static_cast<int>(woken);
}

int futex_wake_all(const FutexWord& word) noexcept { return futex_wake(word, INT_MAX); }

bool process_alive(int pid) noexcept {
  if (MPROC_SYSCALL(kill)(pid, 0) != 0 && errno == ESRCH) return false;
  // /proc/PID/stat: "PID (COMM) STATE ...", where COMM may hold any byte.
  char path[32];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  int fd = MPROC_SYSCALL(open)(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno != ENOENT;
  char stat[512];
  ssize_t got = MPROC_SYSCALL(read)(fd, stat, sizeof(stat) - 1);
  MPROC_SYSCALL(close)(fd);
  if (got <= 0) return true;  // cannot tell: assume alive
  stat[got] = '\0';
  const char* end_of_name = std::strrchr(stat, ')');
  if (end_of_name == nullptr || end_of_name[1] != ' ') return true;
  char state = end_of_name[2];
  return state != 'Z' && state != 'X' && state != 'x';
}


void yield_cpu() noexcept { (void)MPROC_SYSCALL(sched_yield)(); }

}  // namespace mproc::os
