#include "os/poll.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "os/syscall.hpp"

namespace mproc::os {
namespace {

timespec to_timespec(std::chrono::nanoseconds ns) {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(ns);
  return timespec{static_cast<time_t>(seconds.count()), static_cast<long>((ns - seconds).count())};
}

int to_milliseconds(Timeout timeout) {
  if (!timeout) return -1;
  // Round up, so a short wait is not a busy loop of zero-length waits.
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
  return static_cast<int>(std::min<long long>(ms, 1 << 30));
}

}  // namespace

Result<int> poll_readable(std::span<PollEntry> entries, Timeout timeout) {
  std::vector<pollfd> fds(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) fds[i] = {entries[i].fd, POLLIN, 0};
  Deadline deadline(timeout);
  for (;;) {
    Timeout left = deadline.remaining();
    timespec ts{};
    if (left) ts = to_timespec(*left);
    int n = MPROC_SYSCALL(ppoll)(fds.data(), fds.size(), left ? &ts : nullptr, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      return {0, Error::last("ppoll")};
    }
    for (std::size_t i = 0; i < entries.size(); ++i) entries[i].ready = fds[i].revents != 0;
    return {n, {}};
  }
}

static_assert(sizeof(RawPollEntry) == sizeof(pollfd) && kPollIn == POLLIN);

Result<int> poll_in_place(std::span<RawPollEntry> entries, int timeout_ms) noexcept {
  int n = MPROC_SYSCALL(poll)(reinterpret_cast<pollfd*>(entries.data()), entries.size(), timeout_ms);
  if (n < 0) return {0, Error::last("poll")};
  return {n, {}};
}

Result<UniqueFd> epoll_create() noexcept {
  int fd = MPROC_SYSCALL(epoll_create1)(EPOLL_CLOEXEC);
  if (fd < 0) return {{}, Error::last("epoll_create1")};
  return {UniqueFd(fd), {}};
}

Error epoll_watch(int epoll, int fd, std::uint64_t key, bool one_shot) noexcept {
  epoll_event event{};
  event.events = EPOLLIN | (one_shot ? EPOLLONESHOT : 0u);
  event.data.u64 = key;
  if (MPROC_SYSCALL(epoll_ctl)(epoll, EPOLL_CTL_ADD, fd, &event) != 0) return Error::last("epoll_ctl");
  return {};
}

Error epoll_rearm(int epoll, int fd, std::uint64_t key) noexcept {
  epoll_event event{};
  event.events = EPOLLIN | EPOLLONESHOT;
  event.data.u64 = key;
  if (MPROC_SYSCALL(epoll_ctl)(epoll, EPOLL_CTL_MOD, fd, &event) != 0) return Error::last("epoll_ctl");
  return {};
}

Error epoll_forget(int epoll, int fd) noexcept {
  if (MPROC_SYSCALL(epoll_ctl)(epoll, EPOLL_CTL_DEL, fd, nullptr) != 0) return Error::last("epoll_ctl");
  return {};
}

Result<std::size_t> epoll_wait(int epoll, std::span<std::uint64_t> keys, Timeout timeout) noexcept {
  constexpr int kMaxEvents = 64;
  epoll_event events[kMaxEvents];
  int max = static_cast<int>(std::min<std::size_t>(keys.size(), kMaxEvents));
  Deadline deadline(timeout);
  for (;;) {
    int n = MPROC_SYSCALL(epoll_wait)(epoll, events, max, to_milliseconds(deadline.remaining()));
    if (n < 0) {
      if (errno == EINTR) continue;
      return {0, Error::last("epoll_wait")};
    }
    for (int i = 0; i < n; ++i) keys[static_cast<std::size_t>(i)] = events[i].data.u64;
    return {static_cast<std::size_t>(n), {}};
  }
}

Result<UniqueFd> event_counter() noexcept {
  int fd = MPROC_SYSCALL(eventfd)(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return {UniqueFd(), Error::last("eventfd")};
  return {UniqueFd(fd), {}};
}

Error notify_event_counter(int fd) noexcept {
  std::uint64_t one = 1;
  for (;;) {
    if (MPROC_SYSCALL(write)(fd, &one, sizeof(one)) == sizeof(one)) return {};
    // EAGAIN: the counter is at its maximum, so it is readable already.
    if (errno == EAGAIN) return {};
    if (errno != EINTR) return Error::last("write (eventfd)");
  }
}

void drain_event_counter(int fd) noexcept {
  std::uint64_t count = 0;
  while (MPROC_SYSCALL(read)(fd, &count, sizeof(count)) < 0 && errno == EINTR) {
  }
}

const char* signal_name(int signal) noexcept {
  // A table of our own: sigabbrev_np() drops the "SIG" and needs glibc 2.32.
  switch (signal) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGUSR1: return "SIGUSR1";
    case SIGSEGV: return "SIGSEGV";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    default: return "an unnamed signal";
  }
}

}  // namespace mproc::os
