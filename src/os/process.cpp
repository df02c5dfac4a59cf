#include "os/process.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "os/syscall.hpp"

extern char** environ;

namespace mproc::os {

Result<int> fork() noexcept {
  pid_t pid = MPROC_SYSCALL(fork)();
  if (pid < 0) return {0, Error::last("fork")};
  return {pid, {}};
}

Result<int> fork_bare() noexcept {
  pid_t pid = MPROC_SYSCALL(_Fork)();
  if (pid < 0) return {0, Error::last("_Fork")};
  return {pid, {}};
}

Error close_all_descriptors_except(int keep_a, int keep_b) noexcept {
  if (keep_a > keep_b) std::swap(keep_a, keep_b);
  // Ranges below, between and above the two kept descriptors.
  unsigned first = 0;
  for (int keep : {keep_a, keep_b}) {
    if (keep < 0) continue;
    auto k = static_cast<unsigned>(keep);
    if (k > first && MPROC_SYSCALL(close_range)(first, k - 1, 0) != 0) return Error::last("close_range");
    first = k + 1;
  }
  if (MPROC_SYSCALL(close_range)(first, ~0U, 0) != 0) return Error::last("close_range");
  return {};
}

Error set_nice(int nice) noexcept {
  if (MPROC_SYSCALL(setpriority)(PRIO_PROCESS, 0, nice) != 0) return Error::last("setpriority");
  return {};
}

Error ignore_signal(int signal) noexcept {
  struct sigaction action {};
  action.sa_handler = SIG_IGN;
  if (MPROC_SYSCALL(sigaction)(signal, &action, nullptr) != 0) return Error::last("sigaction");
  return {};
}

Error default_signal(int signal) noexcept {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  if (MPROC_SYSCALL(sigaction)(signal, &action, nullptr) != 0) return Error::last("sigaction");
  return {};
}

void reset_signal_handlers() noexcept {
  for (int signal = 1; signal < NSIG; ++signal) {
    struct sigaction current {};
    if (MPROC_SYSCALL(sigaction)(signal, nullptr, &current) != 0) continue;  // no such signal
    bool handled = (current.sa_flags & SA_SIGINFO) != 0 ||
                   (current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN);
    if (!handled) continue;
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    (void)MPROC_SYSCALL(sigaction)(signal, &action, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  (void)MPROC_SYSCALL(sigprocmask)(SIG_SETMASK, &none, nullptr);
}

Error new_session() noexcept {
  if (MPROC_SYSCALL(setsid)() < 0) return Error::last("setsid");
  return {};
}

Error raise_descriptor_limit() noexcept {
  struct rlimit limit {};
  if (MPROC_SYSCALL(getrlimit)(RLIMIT_NOFILE, &limit) != 0) return Error::last("getrlimit");
  if (limit.rlim_cur == limit.rlim_max) return {};
  limit.rlim_cur = limit.rlim_max;
  if (MPROC_SYSCALL(setrlimit)(RLIMIT_NOFILE, &limit) != 0) return Error::last("setrlimit");
  return {};
}

Result<int> wait_exitcode(int pid) noexcept {
  if (pid <= 0) return {0, Error::of(EINVAL, "waitpid")};  // never "any child"
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

int parent_pid() noexcept { return ::getppid(); }

Error set_parent_death_signal(int signal) noexcept {
  if (MPROC_SYSCALL(prctl)(PR_SET_PDEATHSIG, static_cast<unsigned long>(signal), 0, 0, 0) != 0) {
    return Error::last("prctl(PR_SET_PDEATHSIG)");
  }
  return {};
}

int usable_cpu_count() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (MPROC_SYSCALL(sched_getaffinity)(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<int>(online) : 1;
}

Error block_all_signals_in_this_thread() noexcept {
  sigset_t all;
  sigfillset(&all);
  int err = pthread_sigmask(SIG_BLOCK, &all, nullptr);
  if (err != 0) return Error::of(err, "pthread_sigmask");
  return {};
}

Result<StackBounds> current_thread_stack() noexcept {
  pthread_attr_t attributes;
  int err = pthread_getattr_np(pthread_self(), &attributes);
  if (err != 0) return {{}, Error::of(err, "pthread_getattr_np")};
  void* low = nullptr;
  std::size_t size = 0;
  err = pthread_attr_getstack(&attributes, &low, &size);
  pthread_attr_destroy(&attributes);
  if (err != 0) return {{}, Error::of(err, "pthread_attr_getstack")};
  return {{reinterpret_cast<std::uintptr_t>(low), size}, {}};
}

Result<UniqueFd> open_null() noexcept {
  int fd = MPROC_SYSCALL(open)("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {{}, Error::last("open(/dev/null)")};
  return {UniqueFd(fd), {}};
}

Error redirect(int from, int to) noexcept {
  if (MPROC_SYSCALL(dup2)(from, to) < 0) return Error::last("dup2");
  return {};
}

Result<int> spawn(const char* path, char* const argv[], std::span<const int> inherit,
                  char* const envp[]) noexcept {
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
  // The new program starts with no signal blocked and every signal at its
  // default action, whatever this thread had.
  posix_spawnattr_t attributes;
  if (err == 0) err = posix_spawnattr_init(&attributes);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  if (err == 0) err = posix_spawnattr_setsigmask(&attributes, &none);
  if (err == 0) err = posix_spawnattr_setsigdefault(&attributes, &all);
  if (err == 0) err = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  if (err == 0) err = MPROC_SYSCALL(posix_spawn)(&pid, path, &actions, &attributes, argv,
                                                       envp != nullptr ? envp : environ);
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return {0, Error::of(err, "posix_spawn")};
  return {pid, {}};
}

Result<int> fork_sibling() noexcept {
  // glibc keeps the thread's id in its thread block and registers the
  // thread's robust mutex list with the kernel; its fork() redoes both in the
  // child. A raw clone must do the same by hand: the kernel writes the new
  // id where glibc keeps it (found with PR_GET_TID_ADDRESS), and the robust
  // list (found with get_robust_list) is registered again.
  int* tid_address = nullptr;
  bool know_tid_address = MPROC_SYSCALL(prctl)(PR_GET_TID_ADDRESS, &tid_address, 0, 0, 0) == 0 && tid_address != nullptr;
  void* robust_head = nullptr;
  std::size_t robust_length = 0;
  bool know_robust = MPROC_SYSCALL(syscall)(SYS_get_robust_list, 0, &robust_head, &robust_length) == 0;
  unsigned long flags = CLONE_PARENT | SIGCHLD;
  if (know_tid_address) flags |= CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
  long pid = MPROC_SYSCALL(syscall)(SYS_clone, flags, nullptr, nullptr, know_tid_address ? tid_address : nullptr, 0L);
  if (pid < 0) return {0, Error::last("clone")};
  if (pid == 0 && know_robust) (void)MPROC_SYSCALL(syscall)(SYS_set_robust_list, robust_head, robust_length);
  return {static_cast<int>(pid), {}};
}

Result<int> peer_pid(int socket) noexcept {
  ucred credentials{};
  socklen_t length = sizeof(credentials);
  if (MPROC_SYSCALL(getsockopt)(socket, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
    return {0, Error::last("getsockopt SO_PEERCRED")};
  }
  return {credentials.pid, {}};
}

Result<UniqueFd> duplicate(int fd) noexcept {
  int copy = MPROC_SYSCALL(fcntl)(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return {UniqueFd(), Error::last("fcntl F_DUPFD_CLOEXEC")};
  return {UniqueFd(copy), {}};
}

std::optional<std::string> take_environment_variable(const char* name) {
  const char* value = ::getenv(name);
  if (value == nullptr) return std::nullopt;
  std::string copy = value;
  ::unsetenv(name);
  return copy;
}

char** environment() noexcept { return environ; }

void replace_environment(const std::vector<std::string>& variables) {
  ::clearenv();
  for (const std::string& variable : variables) {
    std::size_t equals = variable.find('=');
    if (equals == std::string::npos || equals == 0) continue;
    ::setenv(variable.substr(0, equals).c_str(), variable.c_str() + equals + 1, 1);
  }
}

Result<std::string> current_directory() {
  std::string path(256, '\0');
  while (MPROC_SYSCALL(getcwd)(path.data(), path.size()) == nullptr) {
    if (errno != ERANGE) return {{}, Error::last("getcwd")};
    path.resize(path.size() * 2);
  }
  path.resize(std::char_traits<char>::length(path.c_str()));
  return {std::move(path), {}};
}

Error change_directory(const std::string& path) noexcept {
  if (MPROC_SYSCALL(chdir)(path.c_str()) != 0) return Error::last("chdir");
  return {};
}

Error set_close_on_exec(int fd) noexcept {
  if (MPROC_SYSCALL(fcntl)(fd, F_SETFD, FD_CLOEXEC) != 0) return Error::last("fcntl F_SETFD");
  return {};
}

}  // namespace mproc::os
