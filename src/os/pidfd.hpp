// Process descriptors (pidfds): a race-free way to wait for, signal and reap
// one process, and a descriptor that poll() reports readable once it ends.

#pragma once

#include <optional>

#include "mproc/unique_fd.hpp"
#include "os/error.hpp"

namespace mproc::os {

// A close-on-exec pidfd for `pid`.
Result<UniqueFd> pidfd_open(int pid) noexcept;

// Sends `signal` to the process behind `pidfd`. ESRCH once it has been reaped.
Error pidfd_send_signal(int pidfd, int signal) noexcept;

// Reaps the process behind `pidfd` (a child of this process) if it has ended,
// waiting for that if `block`. The value is its exit code the way Python
// reports it (the exit status, or -N after signal N), or nothing while it
// runs. ECHILD if it was reaped already, by this or another waiter.
Result<std::optional<int>> reap(int pidfd, bool block) noexcept;

}  // namespace mproc::os
