// mproc/process.hpp
//
// Process runs a function (or a subclass's run()) in a child process, as
// Python's multiprocessing.Process does, with the fork start method: the
// child is a copy of the parent, so any callable works as a target,
// capturing lambdas included.
//
// Example:
//
//   mproc::Process p([](int n) { std::printf("child got %d\n", n); }, 42);
//   p.start();
//   p.join();
//   assert(p.exitcode() == 0);
//
// The child runs the target, then leaves the way Python's children do: it
// terminates its daemonic children and joins the others, runs its
// mproc::Finalize callbacks, flushes standard output and error, and exits
// with _exit. It never returns into the parent's code and never runs the
// parent's static destructors or atexit handlers. Its exit code is 0, 1
// after an uncaught exception (reported on stderr under "Process NAME:"),
// n after mproc::exit(n), or -N after signal N.
//
// Finished children are reaped promptly by a background thread, joined or
// not: they never linger as zombies. When the main program exits normally,
// daemonic children are terminated and the others are joined. Daemonic
// children also die (SIGKILL) if their parent dies first.
//
// A Process is a handle: copies share one process. active_children(),
// current_process() and parent_process() return such handles.

#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/timeout.hpp"

namespace mproc {

class Process;

namespace detail {
struct ProcessState;

// A type-erased target and its arguments, called in the child.
struct ProcessTarget {
  virtual ~ProcessTarget() = default;
  virtual void call() = 0;
};

template <class F, class... Args>
struct ProcessTargetFor final : ProcessTarget {
  ProcessTargetFor(F f, std::tuple<Args...> a) : function(std::move(f)), args(std::move(a)) {}
  void call() override { std::apply(function, std::move(args)); }
  F function;
  std::tuple<Args...> args;
};
}  // namespace detail

// ProcessOptions
//
// What Python passes as keyword arguments: the name (empty: Python's
// "Process-N") and whether the process is daemonic.
struct ProcessOptions {
  std::string name;
  bool daemon = false;
};

// Process
//
// Calls that the process's state does not allow throw UsageError with
// Python's reason: starting twice, joining a process that was not started or
// is not this process's child, closing a running process, any use after close().
class Process {
 public:
  // A process whose run() does nothing unless a subclass overrides it.
  Process();
  explicit Process(ProcessOptions options);

  // A process that calls target(args...) in the child. The target and the
  // arguments are copied (or moved) in, as std::thread does.
  template <class F, class... Args>
    requires(!std::is_base_of_v<Process, std::remove_cvref_t<F>> &&
             !std::is_same_v<std::remove_cvref_t<F>, ProcessOptions> &&
             std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>)
  explicit Process(F&& target, Args&&... args) : Process(ProcessOptions{}, std::forward<F>(target),
                                                         std::forward<Args>(args)...) {}

  template <class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
  Process(ProcessOptions options, F&& target, Args&&... args)
      : Process(std::move(options),
                std::make_unique<detail::ProcessTargetFor<std::decay_t<F>, std::decay_t<Args>...>>(
                    std::forward<F>(target), std::make_tuple(std::forward<Args>(args)...))) {}

  Process(const Process&) = default;
  Process& operator=(const Process&) = default;
  Process(Process&&) noexcept = default;
  Process& operator=(Process&&) noexcept = default;
  virtual ~Process();

  // Process::run()
  //
  // What the child does: calls the target. Override it in a subclass.
  virtual void run();

  // Process::start()
  //
  // Starts the child, which calls run(). At most once per process; a
  // daemonic process may not start children.
  void start();

  // Process::join()
  //
  // Waits until the child ends. With a timeout, waits at most that long and
  // returns whether it ended.
  void join();
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_for(detail::to_timeout(timeout));
  }

  // Process::is_alive()
  //
  // Whether the process has started and not yet ended.
  bool is_alive() const;

  // Process::pid(), Process::ident()
  //
  // The child's process id, empty before start(). For current_process(), this
  // process's id.
  std::optional<int> pid() const;
  std::optional<int> ident() const { return pid(); }

  // Process::exitcode()
  //
  // Empty while the process runs (or before start); then 0, 1 after an
  // uncaught exception, n after mproc::exit(n), -N after signal N.
  std::optional<int> exitcode() const;

  // Process::terminate(), Process::kill()
  //
  // Sends SIGTERM (exit code -15), or SIGKILL (-9). Finalizers and the exit
  // path do not run in the child. Harmless once it has ended.
  void terminate();
  void kill();

  // Process::close()
  //
  // Releases the process's resources. UsageError while it runs; afterwards,
  // every other call is a UsageError.
  void close();

  // Process::sentinel()
  //
  // A descriptor (a pidfd) that becomes readable when the process ends, for
  // mproc::wait(). UsageError before start().
  int sentinel() const;

  // Process::name(), Process::daemon()
  //
  // The name (Python's: "Process-N", "Process-N:M" in a child) and whether the
  // process is daemonic; daemon may be set only before start().
  const std::string& name() const;
  void set_name(std::string name);
  bool daemon() const;
  void set_daemon(bool daemon);

  // Two handles to the same process compare equal.
  bool operator==(const Process& other) const noexcept { return state_ == other.state_; }

 private:
  friend Process current_process();
  friend std::optional<Process> parent_process();
  friend std::vector<Process> active_children();

  Process(ProcessOptions options, std::unique_ptr<detail::ProcessTarget> target);
  explicit Process(std::shared_ptr<detail::ProcessState> state) : state_(std::move(state)) {}
  bool join_for(std::optional<std::chrono::nanoseconds> timeout);
  detail::ProcessState& state(const char* operation) const;

  std::shared_ptr<detail::ProcessState> state_;
};

// current_process()
//
// The process this code runs in: "MainProcess" in the main program, the
// Process whose run() is executing in a child.
Process current_process();

// parent_process()
//
// The parent of this process (its name and pid; is_alive() and join() watch
// it through a pidfd), or nothing in the main program.
std::optional<Process> parent_process();

// active_children()
//
// The children of this process that are still running. Reaps those that
// have ended.
std::vector<Process> active_children();

// cpu_count()
//
// The number of CPUs this process may run on (its affinity), at least 1.
int cpu_count();

// exit()
//
// Ends the current process with exit code `code`. In a child this unwinds
// (destructors run) to the child's exit path, like Python's sys.exit; in
// the main program it calls std::exit.
[[noreturn]] void exit(int code);

}  // namespace mproc
