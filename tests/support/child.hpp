// Child processes for tests, reaped even when the test fails: a ChildProcess
// that is destroyed unwaited is killed with SIGKILL and waited for.

#pragma once

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "os/process.hpp"

namespace mproc::testing {

// Whether `pid` names a process that exists (a zombie counts).
bool process_exists(int pid);

// Whether `pid` is gone (or a zombie) within `timeout`, watching a pidfd.
bool ends_within(int pid, std::chrono::milliseconds timeout);

class ChildProcess {
 public:
  // Forks; the child runs body() and exits with the int it returns, or 99
  // (after printing the message) if it throws. The child never returns into
  // the test framework.
  template <class Body>
  static ChildProcess fork(Body&& body);

  // Re-executes the test binary as helper `helper` with `args`, keeping the
  // descriptors in `inherit` open in the child.
  static ChildProcess spawn_helper(const std::string& helper, const std::vector<std::string>& args,
                                   const std::vector<int>& inherit = {});

  // Runs the executable at `path` with `args`.
  static ChildProcess spawn(const std::string& path, const std::vector<std::string>& args,
                            const std::vector<int>& inherit = {});

  ChildProcess(ChildProcess&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}
  ChildProcess& operator=(ChildProcess&&) = delete;
  ~ChildProcess();

  int pid() const { return pid_; }

  // For a test that reaped the child itself: nothing left to do on destruction.
  int release_after_reap() { return std::exchange(pid_, -1); }

  // Waits for the child and returns its exit code (-N after signal N).
  int wait();

 private:
  explicit ChildProcess(int pid) : pid_(pid) {}
  int pid_;
};

template <class Body>
ChildProcess ChildProcess::fork(Body&& body) {
  std::fflush(nullptr);  // so buffered output is not written twice
  auto forked = os::fork();
  if (!forked.ok()) throw std::system_error(forked.error.code, "fork");
  if (forked.value != 0) return ChildProcess(forked.value);
  int code = 0;
  try {
    code = body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child threw: %s\n", e.what());
    code = 99;
  } catch (...) {
    code = 98;
  }
  std::fflush(nullptr);
  os::exit_immediately(code);
}

}  // namespace mproc::testing
