// Waiting for descriptors to become readable, and epoll sets for the
// process reaper.

#pragma once

#include <cstdint>
#include <span>

#include "mproc/unique_fd.hpp"
#include "os/error.hpp"
#include "os/timeout.hpp"

namespace mproc::os {

struct PollEntry {
  int fd = -1;
  bool ready = false;  // set by poll_readable: readable, hung up, or in error
};

// Waits until at least one entry is ready or the timeout passes, retrying
// after EINTR with the time left. Marks the ready entries; the value is
// their number (0 on timeout).
Result<int> poll_readable(std::span<PollEntry> entries, Timeout timeout);

// One descriptor for poll_in_place(): laid out as the kernel's pollfd.
struct RawPollEntry {
  int fd = -1;
  short events = 0;
  short revents = 0;
};
inline constexpr short kPollIn = 0x001;

// poll() on `entries` as they are: no allocation, so async-signal-safe.
// Waits at most `timeout_ms` (-1: no limit). EINTR is returned, not retried.
Result<int> poll_in_place(std::span<RawPollEntry> entries, int timeout_ms) noexcept;

// An epoll set watching descriptors for readability, each with a key.
Result<UniqueFd> epoll_create() noexcept;
// Watches `fd`; a one-shot watch reports once, then waits to be rearmed.
Error epoll_watch(int epoll, int fd, std::uint64_t key, bool one_shot = false) noexcept;
Error epoll_rearm(int epoll, int fd, std::uint64_t key) noexcept;
Error epoll_forget(int epoll, int fd) noexcept;

// Waits for watched descriptors to become ready; stores their keys in `keys`
// and returns how many (0 on timeout). Retries after EINTR.
Result<std::size_t> epoll_wait(int epoll, std::span<std::uint64_t> keys, Timeout timeout) noexcept;

// An event counter (eventfd): a descriptor that poll() reports readable
// after notify_event_counter(), until drain_event_counter(). For waking a
// thread that waits in poll() for other descriptors too.
Result<UniqueFd> event_counter() noexcept;
Error notify_event_counter(int fd) noexcept;
void drain_event_counter(int fd) noexcept;

// The name of `signal` ("SIGKILL"), or "an unnamed signal".
const char* signal_name(int signal) noexcept;

}  // namespace mproc::os
