// The child's side of Process::start(): become the new process, run its
// target, and leave by the child exit path (DESIGN.md): finalizers and
// children handled, standard streams flushed, then _exit, never returning
// into the parent's code nor running its atexit handlers or destructors.

#include <stdio_ext.h>

#include <ext/stdio_sync_filebuf.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <typeinfo>

#include "common/demangle.hpp"
#include "os/poll.hpp"
#include "os/process.hpp"
#include "runtime/runtime.hpp"

namespace mproc::detail {
namespace {

// What Python prints for an uncaught exception in a child, less the traceback.
void report_uncaught(const std::string& process_name, const std::string& type, const char* what) {
  std::fflush(stdout);
  std::cout.flush();
  std::fprintf(stderr, "Process %s:\n%s: %s\n", process_name.c_str(), type.c_str(), what);
  std::fflush(stderr);
}

// Flushes what the child wrote to standard output and error, as Python's
// children do (sys.stdout, sys.stderr). Each stream is touched only if it has
// something pending: in a forked child every page written costs a copy.
void flush_stream(std::FILE* stream) {
  if (__fpending(stream) != 0) std::fflush(stream);
}

void flush_standard_streams() {
  // With sync_with_stdio (the default) the C++ streams write straight into
  // the C ones; otherwise they have buffers of their own.
  using Synced = __gnu_cxx::stdio_sync_filebuf<char>;
  if (dynamic_cast<Synced*>(std::cout.rdbuf()) == nullptr) std::cout.flush();
  if (dynamic_cast<Synced*>(std::clog.rdbuf()) == nullptr) std::clog.flush();
  flush_stream(stdout);
  flush_stream(stderr);
}

bool parent_has_ended(const ProcessState& parent) {
  os::PollEntry entry{parent.pidfd.get()};
  auto polled = os::poll_readable({&entry, 1}, std::chrono::nanoseconds(0));
  return polled.ok() && polled.value > 0;
}

}  // namespace

void run_child(Process& process, ProcessState& self) {
  Runtime::get().enter_child(self);
  run_and_exit(process, self);
}

void run_and_exit(Process& process, ProcessState& self) {
  Runtime& runtime = Runtime::get();
  if (self.daemon) {
    // A daemonic child dies with its parent, even one killed with SIGKILL.
    // If the parent went before the request took hold, go now.
    (void)os::set_parent_death_signal(SIGKILL);
    if (parent_has_ended(*runtime.parent())) os::exit_immediately(1);
  }
  // Two processes reading one terminal would fight over its input (Python
  // does the same).
  (void)os::redirect(runtime.null_fd(), 0);

  int code = 0;
  try {
    process.run();
  } catch (const ExitRequest& request) {
    code = request.code;
  } catch (const std::exception& e) {
    report_uncaught(self.name, demangle(typeid(e).name()), e.what());
    code = 1;
  } catch (...) {
    report_uncaught(self.name, "an exception", "not derived from std::exception");
    code = 1;
  }
  try {
    runtime.run_exit_sequence();
  } catch (...) {
    // Leaving is what matters now.
  }
  runtime.run_child_exit_hooks();  // noexcept by contract
  flush_standard_streams();
  os::exit_immediately(code);
}

}  // namespace mproc::detail
