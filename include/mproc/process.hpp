// mproc/process.hpp
//
// Process runs a function (or a subclass's run()) in a child process, as
// Python's multiprocessing.Process does. Under the fork start method (the
// default) the child is a copy of the parent, so any callable works as a
// target, capturing lambdas included. Under spawn and forkserver (see
// mproc/start_method.hpp) the target and its arguments travel through the
// codec: a target that cannot is a NotTransferableError at start().
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

#include "mproc/detail/type_name.hpp"
#include "mproc/errors.hpp"
#include "mproc/function.hpp"
#include "mproc/start_method.hpp"
#include "mproc/timeout.hpp"

namespace mproc {

class Process;

namespace detail {
struct ProcessState;
struct ChildBootstrap;

// SpawnCall<F, Args...>
//
// A target and its arguments as one serializable function object: what a
// spawn or forkserver child receives and calls (once: the arguments are
// moved into the call).
template <class F, class... Args>
class SpawnCall {
 public:
  SpawnCall() = default;
  SpawnCall(F function, std::tuple<Args...> args) : function_(std::move(function)), args_(std::move(args)) {}

  void operator()() const
    requires std::is_invocable_v<const F&, Args...>
  {
    std::apply(function_, std::move(args_));
  }

  template <class Archive>
  void serialize(Archive& archive) {
    archive(function_, args_);
  }

 private:
  F function_{};
  mutable std::tuple<Args...> args_;
};

template <class F, class... Args>
struct custom_parts_transferable<SpawnCall<F, Args...>>
    : std::bool_constant<supported<F, 1>() && (supported<Args, 1>() && ...)> {};

// Whether f(args...) can be sent to a child that does not share this
// process's memory.
template <class F, class... Args>
inline constexpr bool transferable_call = valid_function_target<SpawnCall<F, Args...>, void>;

// Why T cannot cross, in words, for the NotTransferableError of start().
template <class T>
constexpr const char* untransferable_reason() {
  constexpr Kind kind = kind_v<T>;
  if constexpr (kind == Kind::capturing_lambda) {
    return "a capturing lambda hides its captures from the codec: pass them as arguments, use "
           "mproc::partial(f, args...), or a struct with public fields and an operator()";
  } else if constexpr (kind == Kind::std_function) {
    return "a std::function hides what it calls: use a plain function, a capture-less lambda or "
           "mproc::Function";
  } else if constexpr (kind == Kind::raw_pointer) {
    return "a raw pointer means nothing in another process";
  } else {
    return "it has no serialization the codec knows, or is not default-constructible";
  }
}

// A type-erased target and its arguments, called in the child.
struct ProcessTarget {
  virtual ~ProcessTarget() = default;
  // Calls the target in the process that has it (a fork child, a worker).
  virtual void call() = 0;
  // The target as a Function a spawn or forkserver child can decode; throws
  // NotTransferableError, saying why, when it cannot cross.
  virtual Function<void()> transferable() const = 0;
};

// Once: the arguments are moved into the one call (a Process's target).
// Otherwise each call gets them as lvalues (a pool initializer).
template <bool Once, class F, class... Args>
struct ProcessTargetFor final : ProcessTarget {
  ProcessTargetFor(F f, std::tuple<Args...> a) : function(std::move(f)), args(std::move(a)) {}

  void call() override {
    if constexpr (Once) {
      std::apply(function, std::move(args));
    } else {
      std::apply(function, args);
    }
  }

  Function<void()> transferable() const override {
    if constexpr (transferable_call<F, Args...> && std::is_copy_constructible_v<F> &&
                  std::is_copy_constructible_v<std::tuple<Args...>>) {
      return Function<void()>(SpawnCall<F, Args...>(function, args));
    } else {
      throw NotTransferableError(untransferable_message());
    }
  }

  static std::string untransferable_message() {
    std::string message = "mproc: under the spawn and forkserver start methods the target and its arguments "
                          "travel through the codec, and ";
    if constexpr (!supported<F>() || !std::is_default_constructible_v<F>) {
      message += "the target (" + std::string(type_name<F>()) + ") cannot: " + untransferable_reason<F>();
    } else {
      bool found = false;
      auto check = [&]<class A>(std::type_identity<A>) {
        if (found || supported<A>()) return;
        found = true;
        message += "an argument (" + std::string(type_name<A>()) + ") cannot: " + untransferable_reason<A>();
      };
      (check(std::type_identity<Args>{}), ...);
      if (!found && !std::is_copy_constructible_v<std::tuple<Args...>>) {
        message += "a move-only argument cannot (the request is made from a copy of the arguments)";
      } else if (!found) {
        message += "this call cannot (its arguments do not fit the target)";
      }
    }
    return message;
  }

  F function;
  std::tuple<Args...> args;
};

template <bool Once, class F, class... Args>
std::unique_ptr<ProcessTarget> make_target(F&& target, std::tuple<Args...> args) {
  return std::make_unique<ProcessTargetFor<Once, std::decay_t<F>, Args...>>(std::forward<F>(target), std::move(args));
}
}  // namespace detail

// ProcessOptions
//
// What Python passes as keyword arguments: the name (empty: Python's
// "Process-N") and whether the process is daemonic; and how to start it
// (empty: the default method when start() is called; see
// mproc/start_method.hpp and Context).
struct ProcessOptions {
  std::string name;
  bool daemon = false;
  std::optional<StartMethod> start_method;
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
      : Process(std::move(options), detail::make_target<true>(std::forward<F>(target),
                                                                std::make_tuple(std::forward<Args>(args)...))) {}

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
  // daemonic process may not start children. Under spawn and forkserver: a
  // target that cannot travel through the codec, or a subclass (its run()
  // would have to be rebuilt in the child), is a NotTransferableError; a
  // program that cannot be executed is a std::system_error; nothing is
  // started then.
  void start();

  // Process::start_method()
  //
  // The method start() uses (or used): the one given in ProcessOptions or
  // by a Context, else the default when start() is called.
  StartMethod start_method() const;

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
  friend struct detail::ChildBootstrap;

  Process(ProcessOptions options, std::unique_ptr<detail::ProcessTarget> target);
  explicit Process(std::shared_ptr<detail::ProcessState> state) : state_(std::move(state)) {}
  bool join_for(std::optional<std::chrono::nanoseconds> timeout);
  Function<void()> transferable_target(StartMethod method) const;
  void start_forked();
  void start_fresh(StartMethod method, Function<void()> target);
  void adopt_child(int pid);
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
