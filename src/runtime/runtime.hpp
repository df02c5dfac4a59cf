// The runtime of this process: who it is (its Process state, its parent),
// its children (registered, watched and reaped by a background thread), its
// finalizers, and what happens when it exits.

#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "mproc/process.hpp"
#include "mproc/unique_fd.hpp"
#include "runtime/start.hpp"

namespace mproc::detail::tracker {
// Starts the shared memory tracker if it is not running (errors are left
// for the first segment to report). Defined only where the program uses
// SharedMemory: see Runtime::prepare_for_child().
[[gnu::weak]] void start_before_children() noexcept;
}  // namespace mproc::detail::tracker

namespace mproc::detail {

enum class ProcessKind {
  child,        // started (or to be started) by this process
  main,         // the main program, "MainProcess"
  parent_view,  // this process's parent, seen from the child
};

struct ProcessState : std::enable_shared_from_this<ProcessState> {
  ProcessKind kind = ProcessKind::child;
  std::vector<int> identity;  // Python's _identity: {1}, {23, 1, 1}
  std::string name;
  bool daemon = false;
  std::unique_ptr<ProcessTarget> target;
  std::optional<StartMethod> requested_method;  // empty: the default at start()
  StartMethod method = StartMethod::fork;        // the one start() used

  int created_by = 0;  // the pid of the process that made the Process object

  // Read without a lock: a forked child holds copies of its siblings' states,
  // whose mutexes another thread of the parent may have held at fork().
  std::atomic<bool> started{false};
  std::atomic<bool> closed{false};
  std::atomic<int> pid{0};
  std::atomic<int> started_by{0};  // the pid of the process that started it
  std::atomic<int> joiners{0};     // threads in join(): the reaper leaves the reaping to them

  // Guards what follows between user threads and the reaper thread. Only
  // ever locked in the process that started the child (see is_own_child).
  mutable std::mutex mutex;
  std::uint64_t registry_id = 0;  // the key of a started child in its parent's registry
  UniqueFd pidfd;
  std::optional<int> exitcode;

  // Reaps the process if it has ended (a child) and records its exit code.
  // Call with `mutex` held. Returns whether it has ended.
  bool try_reap_locked();
};

struct FinalizerEntry {
  std::function<void()> callback;
  int priority = 0;
  std::uint64_t sequence = 0;
  bool active = true;  // guarded by the runtime's finalizers mutex
};

// Python's name for a process with this identity: "Process-1", "Process-23:1:1".
std::string default_name(const std::vector<int>& identity);

// This process's runtime. Created on first use and never destroyed, so that
// the reaper thread and atexit handlers can use it to the very end.
class Runtime {
 public:
  static Runtime& get();

  // Who this process is.
  std::shared_ptr<ProcessState> current();
  std::shared_ptr<ProcessState> parent();  // null in the main program
  bool in_child() const { return in_child_; }

  // This process's pid without a system call (getpid() is one): kept up to
  // date across fork() by the child's at-fork handler.
  int pid() const { return pid_; }

  // Called on a child's exit path, after its finalizers, in the order added:
  // the layers above (the shared arena, the shared memory tracker) give back
  // what the child held. Each hook is noexcept and added once, at the
  // layer's start-up; at most kMaxHooks of them.
  static constexpr int kMaxHooks = 4;
  void add_child_exit_hook(void (*hook)());
  void run_child_exit_hooks() const {
    for (int i = 0; i < child_exit_hook_count_; ++i) child_exit_hooks_[i]();
  }

  bool is_current(const ProcessState& state) const { return &state == current_; }

  // The identity of the next Process constructed here.
  std::vector<int> next_identity();

  // Before fork(): what the next child needs from this process, made here so
  // that the child writes as little memory as it can (each page it writes
  // costs a copy): the view of this process it will hold as its parent, a
  // pidfd of this process for that view (kept, and inherited by every child),
  // and /dev/null for its standard input.
  void prepare_for_child();
  int null_fd() const { return null_fd_.get(); }

  // Registers a child about to be forked (enroll, before fork(): allocation
  // then cannot fault on pages the child shares), then watches it once it has
  // a pid and a pidfd, and reaps it when it ends unless a joiner does.
  void enroll(const std::shared_ptr<ProcessState>& child);
  void watch(const ProcessState& child);
  void rewatch(const ProcessState& child);  // after a join that timed out
  void forget(const ProcessState& child);

  // The live children, reaping those that have ended.
  std::vector<std::shared_ptr<ProcessState>> live_children();

  // In the child, right after fork: become `self` (which the running Process
  // keeps alive), child of the view prepare_for_child() made.
  void enter_child(ProcessState& self);

  // In a spawn or forkserver child, before its target runs: become `self`,
  // child of `parent`.
  void enter_fresh_child(const std::shared_ptr<ProcessState>& self, std::shared_ptr<ProcessState> parent);

  // After prepare_for_child(): who this process is, for a spawn or
  // forkserver child's request (its parent's name, identity, pid, and a
  // pidfd of it).
  void describe_parent(ChildRequest& request);

  // In a child made by a fork that ran no pthread_atfork handler (the fork
  // server's): what the runtime's handler would have done.
  void after_bare_fork() { after_fork_in_child(); }

  // Descriptors listed here are closed in a child forked meanwhile (by any
  // thread): the ends of a socket pair on their way to a new child or fork
  // server, which a sibling must not keep open (its copy would hide the end
  // of file the new process waits for). List returns a slot, or -1 when all
  // kMaxInFlight are taken (the descriptor is then left to the children).
  static constexpr int kMaxInFlight = 32;
  int list_in_flight(int fd) noexcept;
  void unlist_in_flight(int slot) noexcept;

  // What a process does when it ends normally: finalizers (priority >= 0),
  // terminate daemonic children, join all children, the other finalizers.
  void run_exit_sequence();

  // Finalizers. deactivate_finalizer returns whether it was still active.
  void add_finalizer(const std::shared_ptr<FinalizerEntry>& entry);
  void run_finalizers(std::optional<int> min_priority);
  bool finalizer_active(const FinalizerEntry& entry);
  bool deactivate_finalizer(FinalizerEntry& entry);

  // Registers the main program's exit handler once.
  void ensure_exit_handler();

 private:
  Runtime();
  void ensure_reaper_locked();
  void reaper_loop(int epoll);
  void reap(std::uint64_t id);
  void before_fork();
  void after_fork_in_parent();
  void after_fork_in_child();

  std::shared_ptr<ProcessState> main_;
  ProcessState* current_;              // main_, or in a child its running Process's state
  std::shared_ptr<ProcessState> parent_view_;  // made for the next child
  std::shared_ptr<ProcessState> parent_;       // in a child: its parent
  bool in_child_ = false;
  int pid_ = 0;
  void (*child_exit_hooks_[kMaxHooks])() = {};
  int child_exit_hook_count_ = 0;
  std::mutex hooks_mutex_;
  int counter_ = 0;
  UniqueFd self_pidfd_;
  UniqueFd inherited_parent_pidfd_;
  UniqueFd null_fd_;

  std::mutex children_mutex_;  // guards children_, epoll_, reaper_running_, counter_, next_id_
  std::map<std::uint64_t, std::shared_ptr<ProcessState>> children_;
  std::uint64_t next_id_ = 0;
  UniqueFd epoll_;
  bool reaper_running_ = false;
  // Held by the reaper thread while it works (it allocates and frees), and
  // by fork() around the fork: an allocator that is not fork-safe (ASan's)
  // must not be left locked in the child.
  std::mutex reaper_busy_;
  std::atomic<bool> reaper_started_{false};
  std::atomic<int> in_flight_[kMaxInFlight];
  bool fork_holds_reaper_ = false;

  std::mutex finalizers_mutex_;
  std::vector<std::shared_ptr<FinalizerEntry>> finalizers_;
  bool exit_handler_registered_ = false;
};

// Thrown by mproc::exit() in a child, caught by its bootstrap. Not a
// std::exception, so that `catch (const std::exception&)` does not stop it.
struct ExitRequest {
  int code;
};

// The child's side of Process::start(): runs `process.run()` and exits.
[[noreturn]] void run_child(Process& process, ProcessState& self);
// The same once the runtime knows it is `self` (a spawn or forkserver child).
[[noreturn]] void run_and_exit(Process& process, ProcessState& self);

// InFlightFd
//
// A descriptor listed with Runtime::list_in_flight while it lives; unlisted
// before it is closed (so that a child never closes a reused number).
class InFlightFd {
 public:
  explicit InFlightFd(UniqueFd fd) noexcept;
  ~InFlightFd() { reset(); }
  InFlightFd(const InFlightFd&) = delete;
  InFlightFd& operator=(const InFlightFd&) = delete;

  int get() const noexcept { return fd_.get(); }
  // Unlists the descriptor and hands it over.
  UniqueFd release() noexcept;
  // Unlists the descriptor and closes it.
  void reset() noexcept { release().reset(); }

 private:
  UniqueFd fd_;
  int slot_ = -1;
};

// A spawn or forkserver child's Process, made from its request.
struct ChildBootstrap {
  [[noreturn]] static void run(const std::shared_ptr<ProcessState>& self);
};

}  // namespace mproc::detail
