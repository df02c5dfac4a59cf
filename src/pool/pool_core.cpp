// The process pool under Pool and ProcessPoolExecutor.
//
// Workers. Each worker is a daemonic child forked by the supervisor thread,
// with an inbox of its own: the parent decides which worker runs which
// task, so it always knows what each worker holds. A worker takes tasks
// from its inbox in order, publishes `started` before running one and
// `finished` after its report is in the shared report queue
// (protocol.hpp). How many tasks wait in an inbox adapts to how long tasks
// take: about kQueuedWorkNs of work, at least one, so that quick tasks never
// leave a worker idle while the supervisor sleeps, and slow ones are never
// stuck behind one another while another worker is free (scheduling.cpp).
//
// Supervision. A watcher thread polls the workers' pidfds and reports each
// end into the report queue, so the supervisor thread sees the news in
// order with the reports. A dead worker's outcome is settled once every
// report it counted as finished has been read: if it had started a task
// beyond those, that task fails with WorkerLostError (it ran, at most
// partly, and is not run again); the tasks it had not started go back to
// the front of the pending tasks and run elsewhere. So every task has
// exactly one outcome. The worker is then replaced while there is work. A
// worker that dies before its initializer finished breaks the pool, as an
// initializer that throws does: no worker could ever be made.
//
// Locking. One mutex guards the pool's state; sinks (user callbacks) are
// called without it, on the supervisor thread (or the thread that
// terminates the pool).

#include "mproc/detail/pool_core.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "common/raise.hpp"
#include "mproc/detail/shared_block.hpp"
#include "mproc/process.hpp"
#include "os/futex.hpp"
#include "os/poll.hpp"
#include "pool/pool_state.hpp"
#include "pool/protocol.hpp"
#include "runtime/start.hpp"

namespace mproc::detail {

using namespace pool;

namespace {

std::string describe_end(const Worker& worker) {
  std::string who = (worker.process ? worker.process->name() : std::string("a worker")) + " (pid " +
                    std::to_string(worker.pid) + ")";
  if (worker.exitcode < 0) {
    return who + " was killed by signal " + std::to_string(-worker.exitcode) + " (" +
           os::signal_name(-worker.exitcode) + ")";
  }
  return who + " exited with code " + std::to_string(worker.exitcode);
}

// A RemoteException written by a worker (without fingerprint).
RemoteException read_remote_exception(std::span<const std::byte> body) {
  Decoder decoder(body);
  RemoteException error;
  decoder.read(error);
  if (decoder.remaining() != 0) decoder.fail("bytes left over after an exception");
  return error;
}

// "Process-3" -> "ForkPoolWorker-3", as Python names its pool workers.
// Python's names: "ForkPoolWorker-3", "SpawnProcess-2", "ForkServerPoolWorker-1".
std::string worker_name(const std::string& process_name, const std::string& prefix, StartMethod method) {
  constexpr std::string_view kDefault = "Process";
  if (process_name.rfind(kDefault, 0) != 0) return process_name;
  return std::string(start_method_prefix(method)) + prefix + process_name.substr(kDefault.size());
}

// Wake-ups of iterating threads the supervisor holds back until it has no
// more reports at hand (see WakeDeferrer).
thread_local std::vector<std::shared_ptr<Wakeable>> deferred_wakes;
constexpr int kMaxReportsBetweenWakes = 64;

void defer_wake_on_supervisor(std::shared_ptr<Wakeable> sleeper) { deferred_wakes.push_back(std::move(sleeper)); }

void wake_deferred() {
  std::vector<std::shared_ptr<Wakeable>> sleepers;
  sleepers.swap(deferred_wakes);
  for (const auto& sleeper : sleepers) sleeper->wake();
}

}  // namespace

PoolCore::PoolCore(PoolOptions options) : options_(std::move(options)) {
  method_ = resolve_start_method(options_.start_method);
  // A worker that cannot be sent its initializer: say so before any starts.
  if (method_ != StartMethod::fork && options_.initializer) sent_initializer_ = options_.initializer->transferable();
  int processes = options_.processes > 0 ? options_.processes : cpu_count();
  workers_.resize(static_cast<std::size_t>(processes));
  reports_ = create_queue(QueueKind::simple, kMessageFingerprint, 0);
  counters_block_ = allocate_block(BlockKind::pool_counters, sizeof(WorkerCounters) * workers_.size());
  counters_ = static_cast<WorkerCounters*>(block_data(*counters_block_));
  watcher_wake_ = unwrap(os::event_counter(), "Pool");

  std::promise<void> started;
  std::future<void> ready = started.get_future();
  supervisor_ = std::thread([this, &started] { supervise(started); });
  try {
    ready.get();
  } catch (...) {
    supervisor_.join();
    {
      std::lock_guard lock(mutex_);
      for (Worker& worker : workers_) {
        if (worker.process) worker.process->kill();
      }
    }
    for (Worker& worker : workers_) {
      if (worker.process) worker.process->join();
    }
    throw;
  }
  watcher_ = std::thread([this] { watch(); });
}

PoolCore::~PoolCore() {
  if (!supervisor_.joinable()) return;  // joined, or torn down by the supervisor itself
  terminate();
  join(std::nullopt);
}

bool PoolCore::on_result_thread() const { return std::this_thread::get_id() == supervisor_.get_id(); }

// The last reference went away. On the supervisor thread (in a callback),
// the threads cannot be joined from here and the object is still in use
// below: the supervisor goes on until the workers are gone (a closed pool's
// tasks finish, a terminated pool's workers are killed), then deletes it.
void PoolCore::release() {
  if (!on_result_thread()) {
    delete this;
    return;
  }
  if (running()) terminate();
  std::lock_guard lock(mutex_);
  delete_when_done_ = true;
}

void PoolCore::delete_from_supervisor() {
  (void)os::notify_event_counter(watcher_wake_.get());
  if (watcher_.joinable()) watcher_.join();
  supervisor_.detach();
  delete this;
}

// The supervisor thread: starts the workers, then reads reports.
void PoolCore::supervise(std::promise<void>& started) {
  {
    std::unique_lock lock(mutex_);
    try {
      for (std::size_t slot = 0; slot < workers_.size(); ++slot) spawn_locked(slot);
    } catch (...) {
      started.set_exception(std::current_exception());
      return;
    }
  }
  started.set_value();
  defer_wake = &defer_wake_on_supervisor;

  std::vector<std::byte> message;
  int since_wakes = 0;
  for (;;) {
    if (!poll_reports(message)) {
      supervisor_asleep_.store(true, std::memory_order_seq_cst);
      receive(*reports_, message);
      supervisor_asleep_.store(false, std::memory_order_relaxed);
    }
    ReportHeader header{};
    if (message.size() < sizeof(header)) continue;
    std::memcpy(&header, message.data(), sizeof(header));
    auto rest = std::span<const std::byte>(message).subspan(sizeof(header));
    switch (header.kind) {
      case ReportKind::done:
      case ReportKind::failed:
        on_answer(header, rest);
        break;
      case ReportKind::worker_ended:
        on_worker_ended(header);
        break;
      case ReportKind::initializer_failed:
        on_initializer_failed(header, rest);
        break;
      case ReportKind::wake:
        break;
    }
    if (++since_wakes >= kMaxReportsBetweenWakes || queue_size(*reports_) == 0) {
      wake_deferred();
      since_wakes = 0;
    }
    std::unique_lock lock(mutex_);
    if (delete_when_done_ && all_gone_locked()) {
      quit_ = true;
      lock.unlock();
      delete_from_supervisor();
      return;
    }
    if (quit_) return;
  }
}

bool PoolCore::all_gone_locked() const {
  return std::all_of(workers_.begin(), workers_.end(), [](const Worker& worker) {
    return worker.state == WorkerState::gone || worker.state == WorkerState::empty;
  });
}

// While tasks are out, a report is due soon: look for it for a while
// before sleeping, so that a result waits for no wake-up on this side.
bool PoolCore::poll_reports(std::vector<std::byte>& message) {
  if (in_flight_.load(std::memory_order_relaxed) == 0) return false;
  // A clock read costs ~60 ns on a VM: read it once per round of spins.
  auto until = std::chrono::steady_clock::now() + kReportPatience;
  do {
    for (int i = 0; i < 256; ++i) {
      if (queue_size(*reports_) != 0 && try_receive(*reports_, message)) return true;
      os::cpu_relax();
    }
    os::yield_cpu();  // a worker may need this CPU to finish the task
  } while (std::chrono::steady_clock::now() < until);
  return false;
}

void PoolCore::on_answer(const ReportHeader& header, std::span<const std::byte> rest) {
  std::uint64_t run_ns = 0;
  if (rest.size() < sizeof(run_ns)) return;
  std::memcpy(&run_ns, rest.data() + rest.size() - sizeof(run_ns), sizeof(run_ns));
  auto body = rest.first(rest.size() - sizeof(run_ns));

  std::optional<PoolTask> task;
  std::vector<Failure> failures;
  {
    std::lock_guard lock(mutex_);
    if (header.slot >= workers_.size()) return;
    Worker& worker = workers_[header.slot];
    // An answer from a worker whose end was settled already.
    if (worker.generation != header.generation) return;
    // Its task may have been failed already (the pool was terminated or broke).
    auto sent = std::find_if(worker.assigned.begin(), worker.assigned.end(),
                             [&](const SentTask& t) { return t.sequence == header.sequence; });
    if (sent != worker.assigned.end()) {
      task.emplace(std::move(sent->task));
      worker.assigned.erase(sent);
      in_flight_.fetch_sub(1, std::memory_order_relaxed);
    }
    if (run_ns != 0) {  // a worker times only some tasks
      worker.mean_run_ns = worker.mean_run_ns == 0 ? run_ns : (worker.mean_run_ns * 7 + run_ns) / 8 + 1;
    }
    if (worker.state == WorkerState::dying) settle_end_locked(header.slot, failures);
    after_change_locked(failures);
  }
  if (task) deliver(*task, header.kind == ReportKind::done, body);
  run_failures(failures);
}

// Hands a task's answer to its sink.
void PoolCore::deliver(PoolTask& task, bool done, std::span<const std::byte> body) {
  if (done) {
    try {
      Decoder decoder(body);
      task.sink->deliver(task.index, decoder);
    } catch (...) {
      task.sink->fail(task.index, task.items, std::current_exception());
    }
    return;
  }
  std::exception_ptr error;
  try {
    error = remote_exception_ptr(read_remote_exception(body));
  } catch (...) {
    error = std::current_exception();
  }
  task.sink->fail(task.index, task.items, error);
}

void PoolCore::on_worker_ended(const ReportHeader& header) {
  std::vector<Failure> failures;
  {
    std::lock_guard lock(mutex_);
    if (header.slot >= workers_.size()) return;
    Worker& worker = workers_[header.slot];
    if (worker.generation != header.generation || worker.state != WorkerState::running) return;
    worker.state = WorkerState::dying;
    worker.exitcode = header.exitcode;
    settle_end_locked(header.slot, failures);
    after_change_locked(failures);
  }
  run_failures(failures);
}

void PoolCore::on_initializer_failed(const ReportHeader& header, std::span<const std::byte> body) {
  std::string what;
  try {
    RemoteException error = read_remote_exception(body);
    what = error.type + ": " + error.message;
  } catch (const std::exception& error) {
    what = error.what();
  }
  std::vector<Failure> failures;
  {
    std::lock_guard lock(mutex_);
    if (header.slot >= workers_.size() || workers_[header.slot].generation != header.generation) return;
    break_locked("a worker's initializer failed (" + what + ")", failures);
  }
  run_failures(failures);
}

// Settles the end of the worker in `slot` once all its counted answers are read.
void PoolCore::settle_end_locked(std::size_t slot, std::vector<Failure>& failures) {
  Worker& worker = workers_[slot];
  WorkerCounters& counters = counters_[slot];
  std::uint64_t finished = counters.finished.load(std::memory_order_acquire);
  if (!worker.assigned.empty() && worker.assigned.front().sequence < finished) return;  // more to read first
  bool was_ready = counters.ready.load(std::memory_order_acquire) != 0;
  std::uint64_t started = counters.started.load(std::memory_order_acquire);
  if (started > finished && !worker.assigned.empty() && worker.assigned.front().sequence == started - 1) {
    std::string what = describe_end(worker) + " while running this task";
    failures.push_back({std::move(worker.assigned.front().task), std::make_exception_ptr(WorkerLostError(what))});
    worker.assigned.pop_front();
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
  }
  // The tasks it never started go first, in their order.
  unassign_all_locked(worker, pending_);
  worker.state = WorkerState::gone;
  worker.inbox.reset();
  if (options_.initializer && !was_ready && (state_ == PoolState::running || state_ == PoolState::closed)) {
    break_locked(describe_end(worker) + " before its initializer finished", failures);
    return;
  }
  if (replacement_needed_locked()) {
    try {
      spawn_locked(slot);
    } catch (const std::exception& error) {
      break_locked(std::string("a worker could not be started (") + error.what() + ")", failures);
    }
  }
}

bool PoolCore::replacement_needed_locked() {
  return state_ == PoolState::running || (state_ == PoolState::closed && (!pending_.empty() || open_streams_locked()));
}

// Whether a stream may still submit tasks (forgetting those that cannot).
bool PoolCore::open_streams_locked() {
  std::erase_if(streams_, [](const std::weak_ptr<OpenInput>& weak) {
    auto stream = weak.lock();
    return !stream || stream->input_finished();
  });
  return !streams_.empty();
}

void PoolCore::add_stream(std::weak_ptr<OpenInput> stream) {
  std::lock_guard lock(mutex_);
  open_streams_locked();
  streams_.push_back(std::move(stream));
}

void PoolCore::input_ended() {
  std::vector<Failure> failures;
  {
    std::lock_guard lock(mutex_);
    after_change_locked(failures);
  }
  run_failures(failures);
}

void PoolCore::spawn_locked(std::size_t slot) {
  Worker& worker = workers_[slot];
  std::uint32_t generation = worker.generation + 1;
  worker = Worker{};
  worker.generation = generation;
  WorkerCounters& counters = counters_[slot];
  counters.started.store(0, std::memory_order_relaxed);
  counters.finished.store(0, std::memory_order_relaxed);
  counters.ready.store(0, std::memory_order_release);
  worker.inbox = create_queue(QueueKind::simple, kMessageFingerprint, 0);

  Process process = method_ == StartMethod::fork ? forked_worker(slot, generation) : sent_worker(slot, generation);
  process.set_name(worker_name(process.name(), options_.worker_name, method_));
  process.start();
  worker.pid = process.pid().value_or(0);
  worker.process = std::move(process);
  worker.state = WorkerState::running;
  (void)os::notify_event_counter(watcher_wake_.get());
}

// A forked worker has a copy of everything: its setup is a closure, the
// initializer any callable.
Process PoolCore::forked_worker(std::size_t slot, std::uint32_t generation) {
  std::function<void()> initializer;
  if (options_.initializer) initializer = [target = options_.initializer] { target->call(); };
  WorkerSetup setup{workers_[slot].inbox, reports_, &counters_[slot], static_cast<std::uint32_t>(slot),
                    generation, std::move(initializer), options_.max_tasks_per_child};
  return Process(ProcessOptions{"", true, StartMethod::fork}, [setup] { worker_main(setup); });
}

// A spawn or forkserver worker gets its setup through the codec.
Process PoolCore::sent_worker(std::size_t slot, std::uint32_t generation) {
  SpawnedWorker setup{workers_[slot].inbox, reports_, counters_block_, static_cast<std::uint32_t>(slot), generation,
                      sent_initializer_, options_.max_tasks_per_child};
  return Process(ProcessOptions{"", true, method_}, fn<&spawned_worker_main>, std::move(setup));
}

void PoolCore::after_change_locked(std::vector<Failure>& failures) {
  dispatch_locked();
  rebalance_locked();
  retire_idle_locked();
  for (Failure& failure : failed_sends_) failures.push_back(std::move(failure));
  failed_sends_.clear();
  changed_.notify_all();
}

void PoolCore::break_locked(const std::string& reason, std::vector<Failure>& failures) {
  if (state_ == PoolState::broken || state_ == PoolState::terminated) return;
  state_ = PoolState::broken;
  broken_reason_ = std::string(options_.owner) + " is broken: " + reason;
  fail_all_locked(std::make_exception_ptr(BrokenProcessPool(broken_reason_)), failures);
}

// Fails every task not done and kills the workers.
void PoolCore::fail_all_locked(const std::exception_ptr& error, std::vector<Failure>& failures) {
  for (PoolTask& task : pending_) failures.push_back({std::move(task), error});
  pending_.clear();
  in_flight_.store(0, std::memory_order_relaxed);
  for (Worker& worker : workers_) {
    for (SentTask& sent : worker.assigned) failures.push_back({std::move(sent.task), error});
    worker.assigned.clear();
    if (worker.state == WorkerState::running || worker.state == WorkerState::dying) worker.process->kill();
  }
  changed_.notify_all();
}

void PoolCore::run_failures(std::vector<Failure>& failures) {
  for (Failure& failure : failures) failure.task.sink->fail(failure.task.index, failure.task.items, failure.error);
  failures.clear();
}

// The watcher thread: reports each worker's end into the report queue.
void PoolCore::watch() {
  Encoder encoder;
  for (;;) {
    std::vector<os::PollEntry> entries{{watcher_wake_.get(), false}};
    std::vector<std::pair<std::size_t, Process>> watched;
    {
      std::lock_guard lock(mutex_);
      if (quit_) return;
      for (std::size_t slot = 0; slot < workers_.size(); ++slot) {
        Worker& worker = workers_[slot];
        if (worker.state == WorkerState::empty || worker.state == WorkerState::gone || worker.end_reported) continue;
        watched.emplace_back(slot, *worker.process);  // a copy keeps its pidfd open while polled
        entries.push_back({worker.process->sentinel(), false});
      }
    }
    auto polled = os::poll_readable(entries, os::Timeout{});
    if (!polled.ok()) continue;
    if (entries[0].ready) os::drain_event_counter(watcher_wake_.get());
    for (std::size_t i = 1; i < entries.size(); ++i) {
      if (!entries[i].ready) continue;
      auto& [slot, process] = watched[i - 1];
      process.join();
      ReportHeader header{ReportKind::worker_ended, static_cast<std::uint32_t>(slot), 0, process.exitcode().value_or(0), 0};
      {
        std::lock_guard lock(mutex_);
        Worker& worker = workers_[slot];
        if (!worker.process || !(*worker.process == process) || worker.end_reported) continue;
        worker.end_reported = true;
        header.generation = worker.generation;
      }
      begin_message(encoder, header);
      queue_put(*reports_, encoder, true, std::nullopt);
    }
  }
}

void PoolCore::wake_supervisor() {
  Encoder encoder;
  begin_message(encoder, ReportHeader{ReportKind::wake, 0, 0, 0, 0});
  queue_put(*reports_, encoder, true, std::nullopt);
}

void PoolCore::submit(std::vector<PoolTask> tasks, bool from_stream) {
  std::vector<Failure> failures;
  {
    std::lock_guard lock(mutex_);
    if (state_ == PoolState::broken) throw BrokenProcessPool(broken_reason_);
    bool open = state_ == PoolState::running || (from_stream && state_ == PoolState::closed && !joined_);
    if (!open) throw UsageError(std::string(options_.owner) + " not running");
    for (PoolTask& task : tasks) pending_.push_back(std::move(task));
    after_change_locked(failures);
  }
  run_failures(failures);
}

void PoolCore::close() {
  std::vector<Failure> failures;
  {
    std::lock_guard lock(mutex_);
    if (state_ != PoolState::running) return;
    state_ = PoolState::closed;
    after_change_locked(failures);
  }
  run_failures(failures);
}

void PoolCore::terminate() {
  std::vector<Failure> failures;
  {
    std::lock_guard lock(mutex_);
    if (state_ == PoolState::terminated) return;
    state_ = PoolState::terminated;
    fail_all_locked(std::make_exception_ptr(BrokenProcessPool(std::string(options_.owner) +
                                                               " was terminated before the task finished")),
                    failures);
  }
  run_failures(failures);
}

void PoolCore::cancel_pending() {
  std::deque<PoolTask> cancelled;
  std::vector<Failure> failures;
  {
    std::lock_guard lock(mutex_);
    cancelled.swap(pending_);
    after_change_locked(failures);
  }
  for (PoolTask& task : cancelled) task.sink->cancel(task.index, task.items);
  run_failures(failures);
}

// After close(), the streams still open read the rest of their input now,
// so that join() waits for all of it, as CPython's (whose imap read its
// input at once) does.
void PoolCore::drain_streams() {
  std::vector<std::shared_ptr<OpenInput>> open;
  {
    std::lock_guard lock(mutex_);
    if (state_ == PoolState::running) throw UsageError(std::string(options_.owner) + ".join(): close() or terminate() first");
    if (state_ != PoolState::closed) return;
    for (const auto& weak : streams_) {
      if (auto stream = weak.lock()) open.push_back(std::move(stream));
    }
  }
  for (const auto& stream : open) stream->drain();
}

bool PoolCore::join(std::optional<std::chrono::nanoseconds> timeout) {
  // Only the supervisor thread can see the workers go: joining on it (in a
  // callback) would wait forever. Python: "cannot join current thread".
  if (on_result_thread()) throw UsageError(std::string(options_.owner) + ".join(): called from a result callback");
  drain_streams();
  std::unique_lock lock(mutex_);
  auto all_gone = [&] { return all_gone_locked(); };
  if (timeout) {
    if (!changed_.wait_for(lock, *timeout, all_gone)) return false;
  } else {
    changed_.wait(lock, all_gone);
  }
  if (joined_) {  // another thread is joining the threads: wait for it
    changed_.wait(lock, [&] { return threads_joined_; });
    return true;
  }
  joined_ = true;
  quit_ = true;
  lock.unlock();
  wake_supervisor();
  (void)os::notify_event_counter(watcher_wake_.get());
  supervisor_.join();
  watcher_.join();
  lock.lock();
  threads_joined_ = true;
  changed_.notify_all();
  return true;
}

std::vector<int> PoolCore::worker_pids() {
  std::lock_guard lock(mutex_);
  std::vector<int> pids;
  for (const Worker& worker : workers_) {
    if (worker.state == WorkerState::running) pids.push_back(worker.pid);
  }
  return pids;
}

bool PoolCore::running() {
  std::lock_guard lock(mutex_);
  return state_ == PoolState::running;
}

std::shared_ptr<PoolCore> start_pool(PoolOptions options) {
  return std::shared_ptr<PoolCore>(new PoolCore(std::move(options)), [](PoolCore* pool) { pool->release(); });
}
bool pool_on_result_thread(const PoolCore& pool) { return pool.on_result_thread(); }
void pool_submit(PoolCore& pool, std::vector<PoolTask> tasks) { pool.submit(std::move(tasks), false); }
void pool_submit(PoolCore& pool, PoolTask task, bool from_stream) {
  std::vector<PoolTask> tasks;
  tasks.push_back(std::move(task));
  pool.submit(std::move(tasks), from_stream);
}
void pool_add_stream(PoolCore& pool, std::weak_ptr<OpenInput> stream) { pool.add_stream(std::move(stream)); }
void pool_input_ended(PoolCore& pool) { pool.input_ended(); }
void pool_close(PoolCore& pool) { pool.close(); }
void pool_terminate(PoolCore& pool) { pool.terminate(); }
bool pool_join(PoolCore& pool, std::optional<std::chrono::nanoseconds> timeout) { return pool.join(timeout); }
void pool_cancel_pending(PoolCore& pool) { pool.cancel_pending(); }
int pool_processes(const PoolCore& pool) noexcept { return pool.processes(); }
std::vector<int> pool_worker_pids(const PoolCore& pool) { return const_cast<PoolCore&>(pool).worker_pids(); }
bool pool_running(const PoolCore& pool) { return const_cast<PoolCore&>(pool).running(); }

}  // namespace mproc::detail
