// The shared memory tracker: a helper process that unlinks the named
// segments (SharedMemory) of processes that died without unlinking them, so
// that a crash leaves nothing behind in /dev/shm. See tracker.cpp and
// docs/shared_memory.md.

#pragma once

#include <cstddef>
#include <string_view>

namespace mproc::detail::tracker {

// The longest segment name (without its leading slash): NAME_MAX, the limit
// of a file name in /dev/shm.
inline constexpr std::size_t kMaxNameLength = 255;

// Tells the tracker that this process holds segment `name` (no leading
// slash); `created` when this process created it. Starts the tracker first
// if this process has none. Throws std::system_error if it cannot.
void register_segment(std::string_view name, bool created);

// Tells the tracker that segment `name` is gone (unlinked): no process holds
// it any more. Does nothing if this process has no tracker. `deferrable`
// (for generated names only, which no one creates again) lets the message
// wait for this process's next one, to share its system call.
void unregister_segment(std::string_view name, bool deferrable) noexcept;

// Starts the tracker if this process has none, so that children forked
// after this share it. Throws std::system_error if it cannot.
void ensure_running();

// Whether this process has a tracker (for tests).
bool running() noexcept;

// The pid of this process's tracker, 0 if none (for tests, which kill it).
int pid_for_testing() noexcept;

}  // namespace mproc::detail::tracker
