// Which worker gets which task: batches to the workers that want them,
// the least loaded first; stealing back for an idle worker; telling idle
// workers to leave after close(). See pool_core.cpp.

#include <algorithm>
#include <cstring>

#include "pool/pool_state.hpp"

namespace mproc::detail {

using namespace pool;

// Whether `worker` should get tasks now: once its inbox has run down to
// half of what it may hold, so that tasks go out in batches.
bool PoolCore::wants_tasks(const Worker& worker) const {
  if (worker.state != WorkerState::running || worker.stop_sent) return false;
  std::size_t room = capacity(worker);
  return worker.assigned.size() < room && worker.assigned.size() <= room / 2;
}

// Hands pending tasks to the workers that want them, the least loaded first.
void PoolCore::dispatch_locked() {
  while (!pending_.empty()) {
    Worker* best = nullptr;
    std::size_t with_room = 0;
    for (Worker& worker : workers_) {
      if (!wants_tasks(worker)) continue;
      ++with_room;
      if (!best || worker.assigned.size() < best->assigned.size()) best = &worker;
    }
    if (!best) return;
    // Several tasks in one message when many wait (one put, one heap block
    // for all), shared out among the workers with room.
    std::size_t share = (pending_.size() + with_room - 1) / with_room;
    std::size_t count = std::min({capacity(*best) - best->assigned.size(), share, kMaxBatch});
    std::vector<PoolTask> batch;
    while (batch.size() < count && !pending_.empty()) {
      PoolTask task = std::move(pending_.front());
      pending_.pop_front();
      if (task.sink->start(task.index)) batch.push_back(std::move(task));  // else cancelled while it waited
    }
    if (!batch.empty()) send_locked(*best, std::move(batch));
  }
}

std::size_t PoolCore::capacity(const Worker& worker) const {
  std::size_t room = kMaxQueuedTasks;
  if (worker.mean_run_ns == 0) room = 1;  // no answer yet: it may be slow
  else room = std::clamp<std::size_t>(kQueuedWorkNs / worker.mean_run_ns, 1, kMaxQueuedTasks);
  if (options_.max_tasks_per_child != 0) {
    std::uint64_t taken = worker.sent - worker.stolen;
    std::uint64_t left = options_.max_tasks_per_child - std::min<std::uint64_t>(taken, options_.max_tasks_per_child);
    room = std::min<std::size_t>(room, worker.assigned.size() + left);
  }
  return room;
}

void PoolCore::send_locked(Worker& worker, std::vector<PoolTask> batch) {
  begin_message(encoder_, TaskHeader{worker.sent, TaskKind::run, static_cast<std::uint32_t>(batch.size())});
  for (const PoolTask& task : batch) {
    encoder_.write(static_cast<std::uint64_t>(task.job.size()));
    encoder_.write_raw(task.job.data(), task.job.size());
  }
  try {
    queue_put(*worker.inbox, encoder_, true, std::nullopt);
  } catch (...) {
    // The inbox could not take them (no memory for a huge task): those
    // tasks fail, the others go on.
    for (PoolTask& task : batch) failed_sends_.push_back({std::move(task), std::current_exception()});
    return;
  }
  for (PoolTask& task : batch) worker.assigned.push_back({worker.sent++, std::move(task)});
  // The first task out while the supervisor sleeps: wake it now, so that
  // it is up and looking for the report when the task is done.
  if (in_flight_.fetch_add(batch.size(), std::memory_order_seq_cst) == 0 &&
      supervisor_asleep_.load(std::memory_order_seq_cst)) {
    supervisor_asleep_.store(false, std::memory_order_relaxed);
    begin_message(encoder_, ReportHeader{ReportKind::wake, 0, 0, 0, 0});
    try {
      queue_put(*reports_, encoder_, true, std::nullopt);
    } catch (...) {  // only an early wake-up is lost: the report itself wakes it
    }
  }
}


// After close(): a worker with nothing left to do is told to leave (once no
// stream may submit more).
void PoolCore::retire_idle_locked() {
  if (state_ != PoolState::closed || !pending_.empty() || open_streams_locked()) return;
  for (Worker& worker : workers_) {
    if (worker.state != WorkerState::running || worker.stop_sent || !worker.assigned.empty()) continue;
    begin_message(encoder_, TaskHeader{worker.sent, TaskKind::stop, 0});
    try {
      queue_put(*worker.inbox, encoder_, true, std::nullopt);
    } catch (...) {
      worker.process->kill();  // it has nothing to do: its end is settled as any
    }
    worker.stop_sent = true;
  }
}

// Moves `worker`'s tasks back to the front of `to`, in their order.
void PoolCore::unassign_all_locked(Worker& worker, std::deque<PoolTask>& to) {
  in_flight_.fetch_sub(worker.assigned.size(), std::memory_order_relaxed);
  while (!worker.assigned.empty()) {
    to.push_front(std::move(worker.assigned.back().task));
    worker.assigned.pop_back();
  }
}

// When a worker is idle and another has tasks waiting in its inbox, takes
// the next of them back (unless its worker takes it first) to run on the
// idle one: a slow task never holds up the tasks queued behind it while a
// worker is free.
void PoolCore::rebalance_locked() {
  if (!pending_.empty()) return;
  for (const Worker& idle : workers_) {
    if (idle.state != WorkerState::running || idle.stop_sent || !idle.assigned.empty() || capacity(idle) == 0) continue;
    Worker* donor = nullptr;
    for (Worker& worker : workers_) {
      if (worker.state == WorkerState::running && worker.assigned.size() >= 2 &&
          (!donor || worker.assigned.size() > donor->assigned.size())) {
        donor = &worker;
      }
    }
    if (!donor || !try_receive(*donor->inbox, steal_buffer_)) return;
    TaskHeader header{};
    std::memcpy(&header, steal_buffer_.data(), sizeof(header));
    // The message's tasks go back first, in their order.
    for (std::uint64_t sequence = header.sequence + header.count; sequence-- > header.sequence;) {
      auto sent = std::find_if(donor->assigned.begin(), donor->assigned.end(),
                               [&](const SentTask& t) { return t.sequence == sequence; });
      if (sent == donor->assigned.end()) continue;  // cannot happen: only tasks are in inboxes before close
      pending_.push_front(std::move(sent->task));
      donor->assigned.erase(sent);
      ++donor->stolen;
      in_flight_.fetch_sub(1, std::memory_order_relaxed);
    }
    dispatch_locked();
    return;
  }
}

}  // namespace mproc::detail
