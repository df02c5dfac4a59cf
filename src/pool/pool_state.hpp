// The process pool's state, shared by pool_core.cpp (threads, reports,
// supervision, the interface) and scheduling.cpp (which worker gets which
// task). See pool_core.cpp for how it works.

#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mproc/detail/pool_core.hpp"
#include "mproc/detail/shared_block.hpp"
#include "mproc/process.hpp"
#include "mproc/unique_fd.hpp"
#include "pool/protocol.hpp"

namespace mproc::detail {

namespace pool {

// About this much work waits in each inbox (see the top of pool_core.cpp).
constexpr std::uint64_t kQueuedWorkNs = 200'000;
constexpr std::size_t kMaxQueuedTasks = 64;
// At most this many tasks go to a worker in one message.
constexpr std::size_t kMaxBatch = 32;
// How long the supervisor looks for a report due soon before it sleeps.
constexpr auto kReportPatience = std::chrono::microseconds(50);

enum class PoolState { running, closed, terminated, broken };
enum class WorkerState { empty, running, dying, gone };

// A task in a worker's inbox or hands, with its number there.
struct SentTask {
  std::uint64_t sequence;
  PoolTask task;
};

struct Worker {
  WorkerState state = WorkerState::empty;
  std::uint32_t generation = 0;
  std::optional<Process> process;
  int pid = 0;
  std::shared_ptr<QueueCore> inbox;
  std::deque<SentTask> assigned;  // sent and not answered, in order
  std::uint64_t sent = 0;
  std::uint64_t stolen = 0;  // taken back from its inbox for an idle worker
  std::uint64_t mean_run_ns = 0;  // moving average; 0 before the first answer
  bool stop_sent = false;
  bool end_reported = false;  // the watcher has reported its end
  int exitcode = 0;
};

// A task to fail once the lock is released.
struct Failure {
  PoolTask task;
  std::exception_ptr error;
};
}  // namespace pool

class PoolCore {
  using Failure = pool::Failure;
  using PoolState = pool::PoolState;
  using ReportHeader = pool::ReportHeader;
  using SentTask = pool::SentTask;
  using Worker = pool::Worker;
  using WorkerCounters = pool::WorkerCounters;
  using WorkerState = pool::WorkerState;

 public:
  explicit PoolCore(PoolOptions options);
  ~PoolCore();
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;

  void submit(std::vector<PoolTask> tasks, bool from_stream);
  void add_stream(std::weak_ptr<OpenInput> stream);
  void input_ended();
  void close();
  void terminate();
  bool join(std::optional<std::chrono::nanoseconds> timeout);
  void cancel_pending();
  int processes() const noexcept { return static_cast<int>(workers_.size()); }
  std::vector<int> worker_pids();
  bool running();
  bool on_result_thread() const;
  void drain_streams();
  void release();

 private:
  void supervise(std::promise<void>& started);
  void delete_from_supervisor();
  void watch();
  bool poll_reports(std::vector<std::byte>& message);
  void on_answer(const ReportHeader& header, std::span<const std::byte> rest);
  static void deliver(PoolTask& task, bool done, std::span<const std::byte> body);
  void on_worker_ended(const ReportHeader& header);
  void on_initializer_failed(const ReportHeader& header, std::span<const std::byte> body);

  void dispatch_locked();
  void send_locked(Worker& worker, std::vector<PoolTask> batch);
  std::size_t capacity(const Worker& worker) const;
  bool wants_tasks(const Worker& worker) const;
  void retire_idle_locked();
  void rebalance_locked();
  void unassign_all_locked(Worker& worker, std::deque<PoolTask>& to);
  void settle_end_locked(std::size_t slot, std::vector<Failure>& failures);
  bool replacement_needed_locked();
  bool all_gone_locked() const;
  bool open_streams_locked();
  void spawn_locked(std::size_t slot);
  Process forked_worker(std::size_t slot, std::uint32_t generation);
  Process sent_worker(std::size_t slot, std::uint32_t generation);
  void break_locked(const std::string& reason, std::vector<Failure>& failures);
  void fail_all_locked(const std::exception_ptr& error, std::vector<Failure>& failures);
  void after_change_locked(std::vector<Failure>& failures);
  void wake_supervisor();
  static void run_failures(std::vector<Failure>& failures);

  PoolOptions options_;
  std::shared_ptr<QueueCore> reports_;
  StartMethod method_ = StartMethod::fork;
  Function<void()> sent_initializer_;  // spawn, forkserver: the initializer as it travels
  std::shared_ptr<SharedBlock> counters_block_;
  WorkerCounters* counters_ = nullptr;
  UniqueFd watcher_wake_;

  std::mutex mutex_;
  std::condition_variable changed_;  // for join(): workers gone, supervisor done
  PoolState state_ = PoolState::running;
  std::string broken_reason_;
  std::vector<Worker> workers_;
  std::deque<PoolTask> pending_;
  Encoder encoder_;  // for send_locked
  std::vector<std::byte> steal_buffer_;
  std::vector<Failure> failed_sends_;  // tasks an inbox refused, to fail once unlocked
  std::vector<std::weak_ptr<OpenInput>> streams_;  // imaps whose input may go on
  bool quit_ = false;
  bool delete_when_done_ = false;
  bool threads_joined_ = false;
  std::atomic<std::size_t> in_flight_{0};  // tasks sent to workers and not answered
  std::atomic<bool> supervisor_asleep_{false};
  bool joined_ = false;

  std::thread supervisor_;
  std::thread watcher_;
};

}  // namespace mproc::detail
