// The runtime: identity, children, the reaper thread, finalizers, exit.
//
// Children are watched through their pidfds by one background thread per
// process (started with the first child), which reaps each as soon as it
// ends, so that none lingers as a zombie whether or not anyone joins it.
// join() and is_alive() reap too; whoever comes first records the exit code
// under the child's mutex.
//
// fork() is bracketed (pthread_atfork) so that a child never inherits the
// runtime's mutexes locked, and starts with no children, no reaper and (if it
// is an mproc child) no finalizers of its parent.

#include "runtime/runtime.hpp"

#include <csignal>
#include <new>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "common/raise.hpp"
#include "mproc/detail/lock_state.hpp"
#include "os/pidfd.hpp"
#include "os/poll.hpp"
#include "os/process.hpp"

namespace mproc::detail {

// The exit code recorded when a child's status was taken by someone else (a
// waitpid(-1) elsewhere in the program, or SIGCHLD set to SIG_IGN).
constexpr int kExitStatusLost = 255;

bool ProcessState::try_reap_locked() {
  if (exitcode) return true;
  if (!pidfd.valid()) return false;
  auto reaped = os::reap(pidfd.get(), false);
  if (reaped.ok()) {
    if (reaped.value) exitcode = *reaped.value;
    return exitcode.has_value();
  }
  if (reaped.error.code == std::errc::no_child_process) {
    exitcode = kExitStatusLost;
    return true;
  }
  return false;
}

std::string default_name(const std::vector<int>& identity) {
  std::string name = "Process-";
  for (std::size_t i = 0; i < identity.size(); ++i) {
    if (i != 0) name += ':';
    name += std::to_string(identity[i]);
  }
  return name;
}

Runtime& Runtime::get() {
  static Runtime* runtime = new Runtime();  // never destroyed: see the header
  return *runtime;
}

Runtime::Runtime() {
  main_ = std::make_shared<ProcessState>();
  main_->kind = ProcessKind::main;
  main_->name = "MainProcess";
  main_->started = true;
  current_ = main_.get();
  pid_ = os::current_pid();
  cached_process_id.store(static_cast<std::uint32_t>(pid_));
  for (auto& slot : in_flight_) slot.store(-1, std::memory_order_relaxed);
  // Only the child acts: locking in the parent around fork() would make it
  // write (and copy) shared pages when unlocking after.
  (void)os::at_fork([] { get().before_fork(); }, [] { get().after_fork_in_parent(); },
                    [] { get().after_fork_in_child(); });
}

void Runtime::before_fork() {
  // Touches the runtime's page only once a reaper thread exists.
  if (!reaper_started_.load()) return;
  reaper_busy_.lock();
  fork_holds_reaper_ = true;
}

void Runtime::after_fork_in_parent() {
  if (!fork_holds_reaper_) return;
  fork_holds_reaper_ = false;
  reaper_busy_.unlock();
}

void Runtime::after_fork_in_child() {
  fork_holds_reaper_ = false;
  new (&reaper_busy_) std::mutex();
  reaper_started_ = false;
  // Another thread may have held these mutexes, or been changing what they
  // guard, at the moment of fork(): start afresh. The parent's registry is
  // left as it was (not even destroyed: that would write its pages); its
  // entries are not our children, and its reaper thread did not come along.
  pid_ = os::current_pid();
  cached_process_id.store(static_cast<std::uint32_t>(pid_));
  new (&children_mutex_) std::mutex();
  new (&finalizers_mutex_) std::mutex();
  new (&hooks_mutex_) std::mutex();
  new (&children_) decltype(children_)();
  epoll_.reset();
  reaper_running_ = false;
  // The parent's pidfd of itself now names our parent: enter_child keeps it.
  inherited_parent_pidfd_ = std::move(self_pidfd_);
  for (auto& slot : in_flight_) {
    int fd = slot.exchange(-1, std::memory_order_relaxed);
    if (fd >= 0) UniqueFd(fd).reset();
  }
}

int Runtime::list_in_flight(int fd) noexcept {
  for (int i = 0; i < kMaxInFlight; ++i) {
    int expected = -1;
    if (in_flight_[i].compare_exchange_strong(expected, fd)) return i;
  }
  return -1;
}

void Runtime::unlist_in_flight(int slot) noexcept {
  if (slot >= 0) in_flight_[slot].store(-1);
}

InFlightFd::InFlightFd(UniqueFd fd) noexcept : fd_(std::move(fd)), slot_(Runtime::get().list_in_flight(fd_.get())) {}

UniqueFd InFlightFd::release() noexcept {
  Runtime::get().unlist_in_flight(std::exchange(slot_, -1));
  return std::move(fd_);
}

std::shared_ptr<ProcessState> Runtime::current() { return current_->shared_from_this(); }
std::shared_ptr<ProcessState> Runtime::parent() { return parent_; }

std::vector<int> Runtime::next_identity() {
  std::lock_guard lock(children_mutex_);
  std::vector<int> identity = current_->identity;
  identity.push_back(++counter_);
  return identity;
}

void Runtime::add_child_exit_hook(void (*hook)()) {
  std::lock_guard lock(hooks_mutex_);
  if (child_exit_hook_count_ == kMaxHooks) std::abort();  // a programming error in mproc
  child_exit_hooks_[child_exit_hook_count_++] = hook;
}

void Runtime::prepare_for_child() {
  // Only a program that uses SharedMemory links the tracker in (a weak
  // reference does not pull it from the library); it starts before the
  // first child, so that the whole tree shares it.
  if (tracker::start_before_children != nullptr) tracker::start_before_children();
  std::lock_guard lock(children_mutex_);
  if (!self_pidfd_.valid()) self_pidfd_ = unwrap(os::pidfd_open(os::current_pid()), "Process.start");
  if (!null_fd_.valid()) null_fd_ = unwrap(os::open_null(), "Process.start");
  auto view = std::make_shared<ProcessState>();
  view->kind = ProcessKind::parent_view;
  view->identity = current_->identity;
  view->name = current_->name;
  view->pid = os::current_pid();
  view->started = true;
  parent_view_ = std::move(view);
}

void Runtime::enter_child(ProcessState& self) {
  // Pointer moves only: no reference count is touched.
  parent_ = std::move(parent_view_);
  parent_->pidfd = std::move(inherited_parent_pidfd_);
  current_ = &self;
  in_child_ = true;
  counter_ = 0;
  new (&finalizers_) decltype(finalizers_)();  // the parent's are not ours (left, not destroyed)
}

void Runtime::enter_fresh_child(const std::shared_ptr<ProcessState>& self, std::shared_ptr<ProcessState> parent) {
  std::lock_guard lock(children_mutex_);
  parent_ = std::move(parent);
  current_ = self.get();
  in_child_ = true;
  counter_ = 0;
  if (!null_fd_.valid()) null_fd_ = unwrap(os::open_null(), "starting a child");
}

void Runtime::describe_parent(ChildRequest& request) {
  std::lock_guard lock(children_mutex_);
  request.parent_name = current_->name;
  request.parent_identity = current_->identity;
  request.parent_pid = pid_;
  request.parent_pidfd = unwrap(os::duplicate(self_pidfd_.get()), "Process.start");
}

void Runtime::ensure_reaper_locked() {
  if (reaper_running_) return;
  epoll_ = unwrap(os::epoll_create(), "starting the process reaper");
  int epoll = epoll_.get();
  std::thread([this, epoll] { reaper_loop(epoll); }).detach();
  // Wait until the thread runs: its start-up allocates, and a fork() in the
  // middle of that would leave a non-fork-safe allocator (ASan's) locked in
  // the child.
  reaper_started_.wait(false);
  reaper_running_ = true;
}

void Runtime::reaper_loop(int epoll) {
  // Process-directed signals (SIGINT, SIGTERM) belong to the program's threads.
  (void)os::block_all_signals_in_this_thread();
  reaper_started_ = true;
  reaper_started_.notify_all();
  std::uint64_t ids[64];
  for (;;) {
    auto ready = os::epoll_wait(epoll, ids, std::nullopt);
    if (!ready.ok()) continue;  // only EINTR-like transients are possible; epoll stays valid
    std::lock_guard busy(reaper_busy_);
    for (std::size_t i = 0; i < ready.value; ++i) reap(ids[i]);
  }
}

// A watched child has ended. Watches are one-shot: a child someone is
// joining is left to the joiner (who reaps it, or rewatches it if its wait
// times out), so that the two do not contend for it.
void Runtime::reap(std::uint64_t id) {
  std::shared_ptr<ProcessState> child;
  {
    std::lock_guard lock(children_mutex_);
    auto found = children_.find(id);
    if (found == children_.end()) return;
    child = found->second;
  }
  if (child->joiners.load() > 0) return;
  bool ended;
  {
    std::lock_guard lock(child->mutex);
    ended = child->try_reap_locked();
  }
  if (ended) {
    forget(*child);
  } else {
    rewatch(*child);
  }
}

void Runtime::enroll(const std::shared_ptr<ProcessState>& child) {
  std::lock_guard lock(children_mutex_);
  ensure_reaper_locked();
  child->registry_id = ++next_id_;
  children_[child->registry_id] = child;
}

void Runtime::watch(const ProcessState& child) {
  // No lock: epoll_ was set by enroll(), in this thread, and epoll_ctl is
  // thread-safe. Taking the mutex would write a page the child shares.
  check(os::epoll_watch(epoll_.get(), child.pidfd.get(), child.registry_id, true), "Process.start");
}

void Runtime::rewatch(const ProcessState& child) {
  std::lock_guard lock(children_mutex_);
  if (children_.count(child.registry_id) == 0 || !child.pidfd.valid()) return;
  (void)os::epoll_rearm(epoll_.get(), child.pidfd.get(), child.registry_id);
}

void Runtime::forget(const ProcessState& child) {
  std::lock_guard lock(children_mutex_);
  auto found = children_.find(child.registry_id);
  if (found == children_.end()) return;
  if (epoll_.valid() && child.pidfd.valid()) (void)os::epoll_forget(epoll_.get(), child.pidfd.get());
  children_.erase(found);
}

std::vector<std::shared_ptr<ProcessState>> Runtime::live_children() {
  std::vector<std::shared_ptr<ProcessState>> all;
  {
    std::lock_guard lock(children_mutex_);
    for (auto& [pid, child] : children_) all.push_back(child);
  }
  std::vector<std::shared_ptr<ProcessState>> live;
  for (auto& child : all) {
    bool ended;
    {
      std::lock_guard lock(child->mutex);
      ended = child->try_reap_locked();
    }
    if (ended) {
      forget(*child);
    } else {
      live.push_back(child);
    }
  }
  return live;
}

void Runtime::run_exit_sequence() {
  {
    // Most processes end with no child left and no finalizer: touch nothing
    // more (a forked child pays a page fault for every page it writes).
    std::scoped_lock lock(children_mutex_, finalizers_mutex_);
    if (children_.empty() && finalizers_.empty()) return;
  }
  run_finalizers(0);
  auto children = live_children();
  for (auto& child : children) {
    if (!child->daemon) continue;
    std::lock_guard lock(child->mutex);
    if (child->pidfd.valid()) (void)os::pidfd_send_signal(child->pidfd.get(), SIGTERM);
  }
  for (auto& child : children) {
    if (child->pidfd.valid()) {
      os::PollEntry entry{child->pidfd.get()};
      (void)os::poll_readable({&entry, 1}, std::nullopt);
    }
    {
      std::lock_guard lock(child->mutex);
      child->try_reap_locked();
    }
    forget(*child);
  }
  run_finalizers(std::nullopt);
}

void Runtime::add_finalizer(const std::shared_ptr<FinalizerEntry>& entry) {
  static std::uint64_t sequence = 0;
  std::lock_guard lock(finalizers_mutex_);
  entry->sequence = ++sequence;
  finalizers_.push_back(entry);
}

void Runtime::run_finalizers(std::optional<int> min_priority) {
  for (;;) {
    std::shared_ptr<FinalizerEntry> next;
    {
      std::lock_guard lock(finalizers_mutex_);
      std::erase_if(finalizers_, [](const auto& e) { return !e->active; });
      for (auto& entry : finalizers_) {
        if (min_priority && entry->priority < *min_priority) continue;
        if (!next || entry->priority > next->priority ||
            (entry->priority == next->priority && entry->sequence > next->sequence)) {
          next = entry;
        }
      }
      if (!next) return;
      next->active = false;
    }
    try {
      next->callback();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "mproc: a finalizer threw: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "mproc: a finalizer threw\n");
    }
  }
}

bool Runtime::finalizer_active(const FinalizerEntry& entry) {
  std::lock_guard lock(finalizers_mutex_);
  return entry.active;
}

bool Runtime::deactivate_finalizer(FinalizerEntry& entry) {
  std::lock_guard lock(finalizers_mutex_);
  return std::exchange(entry.active, false);
}

void Runtime::ensure_exit_handler() {
  std::lock_guard lock(finalizers_mutex_);
  if (exit_handler_registered_) return;
  exit_handler_registered_ = true;
  std::atexit([] { get().run_exit_sequence(); });
}

}  // namespace mproc::detail
