// What the parent and its pool workers say to each other. Each worker has
// an inbox (a queue only the parent puts into); all workers share one report
// queue that the parent's supervisor thread reads, and into which the
// parent's watcher thread also puts news of workers that ended. See
// pool_core.cpp for how they are used.

#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "mproc/codec.hpp"
#include "mproc/detail/queue_core.hpp"
#include "mproc/detail/shared_block.hpp"
#include "mproc/function.hpp"

namespace mproc::detail::pool {

// Heads every message of both queues (the queues check it).
inline constexpr std::uint64_t kMessageFingerprint = 0x6c6f6f50636f7270ULL;  // "mprocPool"

enum class TaskKind : std::uint32_t { run = 1, stop };

// Parent -> worker: a header, then (run) `count` tasks, each its length
// (8 bytes) and its encoded job, numbered from `sequence` on.
struct TaskHeader {
  std::uint64_t sequence;  // the first task's number among those sent to this worker
  TaskKind kind;
  std::uint32_t count;
};

enum class ReportKind : std::uint32_t {
  done = 1,            // body: the job's result
  failed,              // body: a RemoteException
  initializer_failed,  // body: a RemoteException
  worker_ended,        // from the watcher: exitcode says how
  wake,                // nothing: the supervisor looks at the pool's state
};

// Worker (or watcher) -> supervisor: a header, the body, then (done and
// failed) the nanoseconds the job ran, as a trailer.
struct ReportHeader {
  ReportKind kind;
  std::uint32_t slot;
  std::uint32_t generation;
  std::int32_t exitcode;
  std::uint64_t sequence;
};

// What a worker publishes about itself, in memory shared with the parent:
// the number (sequence + 1) of the last task it started (stored before it
// runs it) and of the last it finished (stored once its report is in the
// queue), and whether its initializer ran. The parent may take tasks back
// from an inbox, so the numbers a worker sees can skip.
struct alignas(64) WorkerCounters {
  std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> finished{0};
  std::atomic<std::uint32_t> ready{0};
};

// What a worker process is given.
struct WorkerSetup {
  std::shared_ptr<QueueCore> inbox;
  std::shared_ptr<QueueCore> reports;
  WorkerCounters* counters;
  std::uint32_t slot;
  std::uint32_t generation;
  std::function<void()> initializer;
  std::size_t max_tasks;  // 0: no limit
};

// The worker's whole life: runs the initializer, then tasks until it is
// told to stop or has run max_tasks.
void worker_main(const WorkerSetup& setup);

// A worker's setup as it travels to a spawn or forkserver worker: the queues
// and the counters as descriptors, the initializer by reference.
struct SpawnedWorker {
  std::shared_ptr<QueueCore> inbox;
  std::shared_ptr<QueueCore> reports;
  std::shared_ptr<SharedBlock> counters;  // one WorkerCounters per slot
  std::uint32_t slot = 0;
  std::uint32_t generation = 0;
  Function<void()> initializer;
  std::uint64_t max_tasks = 0;

  void save(Encoder& encoder) const;
  void load(Decoder& decoder);
};

// worker_main() of a spawn or forkserver worker.
void spawned_worker_main(const SpawnedWorker& worker);

// Starts a message: the fingerprint, then `header`.
template <class Header>
void begin_message(Encoder& encoder, const Header& header) {
  encoder.clear();
  encoder.write(kMessageFingerprint);
  encoder.write_raw(&header, sizeof(header));
}

// Takes the next message of `queue` into `message` (without fingerprint).
void receive(QueueCore& queue, std::vector<std::byte>& message);
// The same without waiting: false if there is none.
bool try_receive(QueueCore& queue, std::vector<std::byte>& message);

}  // namespace mproc::detail::pool
