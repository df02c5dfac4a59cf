// Queue and SimpleQueue rows of `make bench`: items from producer processes
// to consumer processes, a batch per iteration.
//
// The children start before the timed loop and wait for a doorbell; each
// iteration rings it, the producers put their share of the batch and the
// consumers get it all. An iteration ends when every item of the batch has
// been taken, so the time per item (report.py divides the time of an
// iteration by the `batch` counter) is the throughput of the whole pipeline,
// the filling and draining of the queue at the ends of a batch included
// (small against a batch). Producers reuse their item: what is measured is
// the queue, not the making of items.

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "bench_support.hpp"
#include "mproc/process.hpp"
#include "mproc/queue.hpp"

namespace {

constexpr std::uint32_t kIntBatch = 10000;
constexpr std::uint32_t kBlobBatch = 256;
constexpr std::size_t kBlobBytes = 64 * 1024;
constexpr unsigned kStallSeconds = 60;

struct BatchShared {
  bench::Doorbell go;    // the parent starts a batch (or, with `stop` set, the end)
  bench::Doorbell done;  // the consumer child has taken its last item of the batch
  std::atomic<std::uint32_t> stop{0};
  std::atomic<std::uint64_t> consumed{0};  // by the consumer child, in the last batch
};

// The children of one benchmark: they wait for `go` and end once `stop` is
// set. Told to stop and joined when this goes, whichever way the benchmark
// ends; one that does not end within seconds is killed (and still joined).
class Children {
 public:
  explicit Children(BatchShared& shared) : shared_(shared) {}
  Children(const Children&) = delete;
  Children& operator=(const Children&) = delete;
  ~Children() { (void)stop(); }

  // Starts a child calling `batch(count)` after the count-th ring of `go`.
  template <class Batch>
  void start(Batch batch) {
    pid_t parent = getpid();
    mproc::Process child([batch, parent, &shared = shared_]() mutable {
      bench::die_with_parent(parent);
      std::uint32_t seen = 0;
      for (;;) {
        seen = shared.go.wait_past(seen);
        if (shared.stop.load(std::memory_order_acquire) != 0) return;
        batch();
      }
    });
    child.start();
    children_.push_back(std::move(child));
  }

  // Stops and joins them all; returns whether every one exited with 0.
  bool stop() {
    if (children_.empty()) return true;
    shared_.stop.store(1, std::memory_order_release);
    shared_.go.ring();
    bool clean = true;
    for (mproc::Process& child : children_) {
      try {
        if (!child.join(std::chrono::seconds(10))) {
          child.kill();
          child.join();
        }
        clean = clean && child.exitcode() == 0;
      } catch (...) {
        clean = false;
      }
    }
    children_.clear();
    return clean;
  }

 private:
  BatchShared& shared_;
  std::vector<mproc::Process> children_;
};

void finish(benchmark::State& state, Children& children, std::uint32_t batch, std::size_t item_bytes) {
  if (!children.stop() && !state.error_occurred()) state.SkipWithError("a child process failed");
  state.counters["batch"] = batch;
  auto items = static_cast<std::int64_t>(state.iterations()) * batch;
  state.SetItemsProcessed(items);
  if (item_bytes != 0) state.SetBytesProcessed(items * static_cast<std::int64_t>(item_bytes));
}

// One producer child, the parent consuming: the child puts item(i) for i in
// [0, batch); the parent checks each one it gets with check(got, i) (in
// order: one producer, one consumer).
template <class Q, class Item, class Check>
void one_to_one(benchmark::State& state, Q queue, std::uint32_t batch, Item item, Check check,
                std::size_t item_bytes = 0) {
  auto shared = bench::make_shared_memory<BatchShared>();
  Children children(*shared);
  try {
    children.start([queue, batch, item]() mutable {
      for (std::uint32_t i = 0; i < batch; ++i) queue.put(item(i));
    });
    bench::StallAlarm alarm(kStallSeconds);
    for (auto _ : state) {
      shared->go.ring();
      bool good = true;
      for (std::uint32_t i = 0; i < batch; ++i) good &= check(queue.get(), i);
      if (!good) {
        state.SkipWithError("an item came wrong or out of order");
        break;
      }
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  finish(state, children, batch, item_bytes);
}

const auto int_item = [](std::uint32_t i) { return static_cast<int>(i); };
const auto int_check = [](int got, std::uint32_t i) { return got == static_cast<int>(i); };

void BM_QueueIntOneToOne(benchmark::State& state) {
  one_to_one(state, mproc::Queue<int>(), kIntBatch, int_item, int_check);
}
BENCHMARK(BM_QueueIntOneToOne)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_SimpleQueueIntOneToOne(benchmark::State& state) {
  one_to_one(state, mproc::SimpleQueue<int>(), kIntBatch, int_item, int_check);
}
BENCHMARK(BM_SimpleQueueIntOneToOne)->Unit(benchmark::kMicrosecond)->UseRealTime();

// 64 KiB items: the producer puts the same vector each time (made before
// the child starts); the parent gets a new one each time, as get() returns
// it, and checks its size and ends.
void BM_Queue64KiBOneToOne(benchmark::State& state) {
  std::vector<char> blob(kBlobBytes, 'q');
  blob.back() = 'z';
  auto item = [blob](std::uint32_t) -> const std::vector<char>& { return blob; };
  auto check = [](const std::vector<char>& got, std::uint32_t) {
    return got.size() == kBlobBytes && got.front() == 'q' && got.back() == 'z';
  };
  one_to_one(state, mproc::Queue<std::vector<char>>(), kBlobBatch, item, check, kBlobBytes);
}
BENCHMARK(BM_Queue64KiBOneToOne)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Two producer children and two consumers, a child and the parent. Each
// producer puts half the batch, then -1; each consumer gets until it takes
// a -1 (so each takes one: all of a producer's items are ahead of its -1).
// The batch ends when both consumers have; the counts must add up.
void BM_QueueIntTwoToTwo(benchmark::State& state) {
  constexpr std::uint32_t kHalf = kIntBatch / 2;
  mproc::Queue<int> queue;
  auto shared = bench::make_shared_memory<BatchShared>();
  Children children(*shared);
  try {
    for (int producer = 0; producer < 2; ++producer) {
      children.start([queue]() mutable {
        for (std::uint32_t i = 0; i < kHalf; ++i) queue.put(static_cast<int>(i));
        queue.put(-1);
      });
    }
    children.start([queue, &shared = *shared]() mutable {
      std::uint64_t taken = 0;
      while (queue.get() != -1) ++taken;
      shared.consumed.store(taken, std::memory_order_relaxed);
      shared.done.ring();
    });
    bench::StallAlarm alarm(kStallSeconds);
    std::uint32_t done = 0;
    for (auto _ : state) {
      shared->go.ring();
      std::uint64_t taken = 0;
      while (queue.get() != -1) ++taken;
      done = shared->done.wait_past(done);
      if (taken + shared->consumed.load(std::memory_order_relaxed) != 2 * kHalf) {
        state.SkipWithError("items lost or duplicated");
        break;
      }
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  finish(state, children, 2 * kHalf, 0);
}
BENCHMARK(BM_QueueIntTwoToTwo)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
