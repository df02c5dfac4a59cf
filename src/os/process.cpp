#include "os/process.hpp"

#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/syscall.hpp"

extern char** environ;

namespace mproc::os {

Result<int> fork() noexcept {
  pid_t pid = MPROC_SYSCALL(fork)();
  if (pid < 0) return {0, Error::last("fork")};
  return {pid, {}};
}

Result<int> wait_exitcode(int pid) noexcept {
  int status = 0;
  for (;;) {
    pid_t got = MPROC_SYSCALL(waitpid)(pid, &status, 0);
    if (got == pid) break;
    if (got < 0 && errno != EINTR) return {0, Error::last("waitpid")};
  }
  if (WIFSIGNALED(status)) return {-WTERMSIG(status), {}};
  return {WEXITSTATUS(status), {}};
}

Error kill(int pid, int signal) noexcept {
  if (MPROC_SYSCALL(kill)(pid, signal) != 0) return Error::last("kill");
  return {};
}

void exit_immediately(int code) noexcept { ::_exit(code); }

Error at_fork(void (*prepare)(), void (*parent)(), void (*child)()) noexcept {
  int err = pthread_atfork(prepare, parent, child);
  if (err != 0) return Error::of(err, "pthread_atfork");
  return {};
}

int current_pid() noexcept { return ::getpid(); }

Result<int> spawn(const char* path, char* const argv[], std::span<const int> inherit) noexcept {
  posix_spawn_file_actions_t actions;
  int err = posix_spawn_file_actions_init(&actions);
  if (err != 0) return {0, Error::of(err, "posix_spawn_file_actions_init")};
  for (int fd : inherit) {
    // dup2 onto itself clears close-on-exec in the child only (POSIX 2024,
    // glibc >= 2.29), so the parent's descriptor keeps its flag and no other
    // thread's fork or exec can leak it.
    err = posix_spawn_file_actions_adddup2(&actions, fd, fd);
    if (err != 0) break;
  }
  pid_t pid = 0;
  if (err == 0) err = MPROC_SYSCALL(posix_spawn)(&pid, path, &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return {0, Error::of(err, "posix_spawn")};
  return {pid, {}};
}

}  // namespace mproc::os
