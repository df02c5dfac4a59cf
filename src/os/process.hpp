// Creating, waiting for and signalling processes.

#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mproc/unique_fd.hpp"
#include "os/error.hpp"

namespace mproc::os {

// The path that names this process's own executable, for re-executing it.
inline constexpr const char* kSelfExe = "/proc/self/exe";

// fork(). The value is 0 in the child and the child's pid in the parent.
Result<int> fork() noexcept;

// fork() without the pthread_atfork handlers (glibc's _Fork): for a child
// that only makes system calls and never returns into the program, so that
// no handler (the runtime's, the user's) runs in it. Async-signal-safe.
Result<int> fork_bare() noexcept;

// Closes every descriptor of this process except `keep_a` and `keep_b`
// (close_range). Async-signal-safe.
Error close_all_descriptors_except(int keep_a, int keep_b) noexcept;

// Raises this process's nice value to `nice` (lower priority), so that it
// yields the CPU to the program's own work. Async-signal-safe.
Error set_nice(int nice) noexcept;

// Sets the disposition of `signal` to ignore. Async-signal-safe.
Error ignore_signal(int signal) noexcept;

// Sets the disposition of `signal` back to its default. Async-signal-safe.
Error default_signal(int signal) noexcept;

// Sets every signal that has a handler back to its default action (ignored
// signals stay ignored), and unblocks every signal: for a forked helper that
// never returns into the program, whose handlers are not its own.
// Async-signal-safe.
void reset_signal_handlers() noexcept;

// setsid(): a new session and process group, so that a signal sent to the
// program's group or terminal does not reach this process. Async-signal-safe.
Error new_session() noexcept;

// Raises the soft limit on open descriptors to the hard limit.
// Async-signal-safe.
Error raise_descriptor_limit() noexcept;

// Waits for child `pid` to end, retrying after EINTR, and returns its exit code
// the way Python reports it: the status passed to exit(), or -N after signal N.
Result<int> wait_exitcode(int pid) noexcept;

// kill(pid, signal).
Error kill(int pid, int signal) noexcept;

// Ends this process at once: no atexit handlers, no static destructors, no
// stdio flush. What a child must use instead of returning into its parent's code.
[[noreturn]] void exit_immediately(int code) noexcept;

// Runs `path` in a new process with arguments `argv` (null-terminated,
// argv[0] included) and environment `envp` (null: this process's). The
// descriptors in `inherit` stay open in the child at the same numbers; every
// other close-on-exec descriptor is closed. The value is the child's pid. A
// failure to execute `path` is reported here, not as a dead child.
Result<int> spawn(const char* path, char* const argv[], std::span<const int> inherit,
                  char* const envp[] = nullptr) noexcept;

// fork() whose child is this process's sibling: a child of this process's
// parent (clone with CLONE_PARENT), which can then wait for it and hold its
// pidfd. No pthread_atfork handler runs. For a single-threaded process
// only (the fork server). The value is 0 in the child and its pid here.
Result<int> fork_sibling() noexcept;

// The pid of the process at the other end of a connected Unix socket, as the
// kernel recorded it when the socket was made (SO_PEERCRED).
Result<int> peer_pid(int socket) noexcept;

// A close-on-exec duplicate of `fd`.
Result<UniqueFd> duplicate(int fd) noexcept;

// Removes the environment variable `name` and returns its value, if it was
// set. Not thread-safe (setenv and getenv are not): for start-up code.
std::optional<std::string> take_environment_variable(const char* name);

// The environment of this process (environ), null-terminated.
char** environment() noexcept;

// Replaces this process's environment with `variables` ("NAME=value" each).
// Not thread-safe: for start-up code.
void replace_environment(const std::vector<std::string>& variables);

// getcwd(), chdir().
Result<std::string> current_directory();
Error change_directory(const std::string& path) noexcept;

// Sets close-on-exec on `fd` again (after it was inherited through exec).
Error set_close_on_exec(int fd) noexcept;

// Registers handlers that fork() runs in the forking thread: `prepare` before,
// `parent` and `child` after, in the respective process.
Error at_fork(void (*prepare)(), void (*parent)(), void (*child)()) noexcept;

// getpid(), getppid().
int current_pid() noexcept;
int parent_pid() noexcept;

// Asks the kernel to send `signal` to this process when the thread that
// created it exits (prctl PR_SET_PDEATHSIG).
Error set_parent_death_signal(int signal) noexcept;

// The number of CPUs this process may run on (its affinity mask), at least 1.
int usable_cpu_count() noexcept;

// Blocks every signal in the calling thread, so that process-directed signals
// go to the program's own threads.
Error block_all_signals_in_this_thread() noexcept;

// The calling thread's stack: its lowest address and its size.
struct StackBounds {
  std::uintptr_t low = 0;
  std::size_t size = 0;
};
Result<StackBounds> current_thread_stack() noexcept;

// A close-on-exec descriptor of /dev/null, open for reading.
Result<UniqueFd> open_null() noexcept;

// dup2(from, to): `to` becomes a copy of `from`, without close-on-exec.
Error redirect(int from, int to) noexcept;

}  // namespace mproc::os
