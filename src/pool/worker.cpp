// A pool worker's side of the protocol (protocol.hpp), and the helpers the
// job templates use in workers.

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <string>

#include "mproc/detail/pool_core.hpp"
#include "mproc/process.hpp"
#include "os/futex.hpp"
#include "os/process.hpp"
#include "pool/protocol.hpp"
#include "runtime/runtime.hpp"

namespace mproc::detail {

RemoteException capture_task_error(const std::string& process) {
  try {
    throw;
  } catch (const ExitRequest&) {
    throw;  // mproc::exit() ends the worker, as sys.exit() would
  } catch (...) {
    return capture_exception(std::current_exception(), process);
  }
}

std::exception_ptr remote_exception_ptr(const RemoteException& error) {
  try {
    rethrow_remote(error);
  } catch (...) {
    return std::current_exception();
  }
}

std::vector<std::byte> encode_job(const PoolJob& job) {
  thread_local Encoder encoder;
  encoder.clear();
  encoder.write(job);
  if (!encoder.fds().empty()) {
    encoder.clear();
    // Tasks travel through a queue, which carries bytes only.
    throw EncodeError(
        "mproc: a pool task's function or arguments hold a descriptor (a Lock, Event, Value, Queue, "
        "Connection, SharedMemory, ... handle), which cannot travel with a task: give it to the workers "
        "through the initializer's arguments instead (as Python requires them to be inherited)");
  }
  auto bytes = encoder.bytes();
  std::vector<std::byte> encoded(bytes.begin(), bytes.end());
  if (bytes.size() > (std::size_t{1} << 20)) encoder = Encoder();  // give back an unusually large buffer
  return encoded;
}

namespace pool {

namespace {

// Copies a message out of the queue (without its fingerprint).
void copy_message(void* context, std::span<const std::byte> bytes, std::span<const ByteView> buffers,
                  bool fingerprinted) {
  auto& out = *static_cast<std::vector<std::byte>*>(context);
  if (fingerprinted) bytes = bytes.subspan(sizeof(kMessageFingerprint));
  std::size_t size = bytes.size();
  for (ByteView buffer : buffers) size += buffer.size();
  out.resize(size);
  std::memcpy(out.data(), bytes.data(), bytes.size());
  std::size_t at = bytes.size();
  for (ByteView buffer : buffers) {  // none: pool messages are encoded without out-of-band parts
    std::memcpy(out.data() + at, buffer.data(), buffer.size());
    at += buffer.size();
  }
}

}  // namespace

void receive(QueueCore& queue, std::vector<std::byte>& message) {
  queue_get(queue, copy_message, &message, true, std::nullopt);
}

bool try_receive(QueueCore& queue, std::vector<std::byte>& message) {
  return queue_get(queue, copy_message, &message, false, std::nullopt);
}

namespace {

std::uint64_t elapsed_ns(std::chrono::steady_clock::time_point since) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - since).count());
}

void put_report(const WorkerSetup& setup, Encoder& out) { queue_put(*setup.reports, out, true, std::nullopt); }

ReportHeader report_header(const WorkerSetup& setup, ReportKind kind, std::uint64_t sequence) {
  return ReportHeader{kind, setup.slot, setup.generation, 0, sequence};
}

// A clock read costs ~60 ns on a VM: a worker times its first tasks, then
// one in kTimingPeriod, enough for the parent's estimate of its pace.
constexpr std::uint64_t kTimedFirst = 8;
constexpr std::uint64_t kTimingPeriod = 8;

// Runs `job` and leaves its report in `out`.
void run_task(const WorkerSetup& setup, const std::string& name, std::span<const std::byte> job,
              std::uint64_t sequence, Encoder& out) {
  bool timed = sequence < kTimedFirst || sequence % kTimingPeriod == 0;
  auto start = timed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
  begin_message(out, report_header(setup, ReportKind::done, sequence));
  try {
    Decoder decoder(job);
    PoolJob function;
    decoder.read(function);
    if (decoder.remaining() != 0) decoder.fail("bytes left over after a task");
    WorkerContext context{out, name};
    function(context);
  } catch (...) {
    RemoteException error = capture_task_error(name);
    begin_message(out, report_header(setup, ReportKind::failed, sequence));
    out.write(error);
  }
  out.write(timed ? std::max<std::uint64_t>(elapsed_ns(start), 1) : std::uint64_t{0});
}

// The next task often follows the last one's result within tens of
// microseconds (a caller waiting on each result): look for it that long
// before sleeping, which would add a wake-up to each round trip.
constexpr auto kTaskPatience = std::chrono::microseconds(50);

void await_task(QueueCore& inbox) {
  auto until = std::chrono::steady_clock::now() + kTaskPatience;  // a clock read costs ~60 ns: once per round
  do {
    for (int i = 0; i < 256; ++i) {
      if (queue_size(inbox) != 0) return;
      os::cpu_relax();
    }
    os::yield_cpu();  // the parent may need this CPU to send the task
  } while (std::chrono::steady_clock::now() < until);
}

bool run_initializer(const WorkerSetup& setup, const std::string& name, Encoder& out) {
  if (!setup.initializer) return true;
  try {
    setup.initializer();
    return true;
  } catch (...) {
    RemoteException error = capture_task_error(name);
    begin_message(out, report_header(setup, ReportKind::initializer_failed, 0));
    out.write(error);
    put_report(setup, out);
    return false;
  }
}

}  // namespace

void worker_main(const WorkerSetup& setup) {
  // Ctrl-C reaches the whole process group: the parent decides what it
  // means; its workers go when it goes (they die with their parent).
  (void)os::ignore_signal(SIGINT);
  const std::string name = current_process().name();
  Encoder out;
  if (!run_initializer(setup, name, out)) return;
  setup.counters->ready.store(1, std::memory_order_release);

  std::vector<std::byte> message;
  std::uint64_t taken = 0;
  while (setup.max_tasks == 0 || taken < setup.max_tasks) {
    await_task(*setup.inbox);
    receive(*setup.inbox, message);
    TaskHeader header{};
    if (message.size() < sizeof(header)) return;  // cannot happen: only the parent writes here
    std::memcpy(&header, message.data(), sizeof(header));
    if (header.kind != TaskKind::run) return;
    auto rest = std::span<const std::byte>(message).subspan(sizeof(header));
    for (std::uint64_t sequence = header.sequence; sequence < header.sequence + header.count; ++sequence) {
      // Tasks not started when the worker leaves (max_tasks) are the parent's to run elsewhere.
      if (setup.max_tasks != 0 && taken == setup.max_tasks) return;
      std::uint64_t length = 0;
      if (rest.size() < sizeof(length)) return;  // cannot happen, as above
      std::memcpy(&length, rest.data(), sizeof(length));
      if (rest.size() - sizeof(length) < length) return;
      auto job = rest.subspan(sizeof(length), length);
      rest = rest.subspan(sizeof(length) + length);
      setup.counters->started.store(sequence + 1, std::memory_order_release);
      run_task(setup, name, job, sequence, out);
      put_report(setup, out);
      setup.counters->finished.store(sequence + 1, std::memory_order_release);
      ++taken;
    }
  }
}

void SpawnedWorker::save(Encoder& encoder) const {
  save_queue(encoder, *inbox);
  save_queue(encoder, *reports);
  encoder.write(slot);
  save_block(encoder, *counters);
  encoder.write(generation);
  encoder.write(initializer);
  encoder.write(max_tasks);
}

void SpawnedWorker::load(Decoder& decoder) {
  inbox = load_queue(decoder, QueueKind::simple, kMessageFingerprint);
  reports = load_queue(decoder, QueueKind::simple, kMessageFingerprint);
  decoder.read(slot);
  counters = load_block(decoder, BlockKind::pool_counters, sizeof(WorkerCounters) * (std::size_t{slot} + 1));
  decoder.read(generation);
  decoder.read(initializer);
  decoder.read(max_tasks);
}

void spawned_worker_main(const SpawnedWorker& worker) {
  auto* counters = static_cast<WorkerCounters*>(block_data(*worker.counters)) + worker.slot;
  std::function<void()> initializer;
  if (worker.initializer) initializer = worker.initializer;
  worker_main(WorkerSetup{worker.inbox, worker.reports, counters, worker.slot, worker.generation,
                          std::move(initializer), static_cast<std::size_t>(worker.max_tasks)});
}

}  // namespace pool
}  // namespace mproc::detail
