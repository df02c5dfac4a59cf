// Pool and ProcessPoolExecutor rows of `make bench` (issue 6): 2 workers
// everywhere, made once per run of a benchmark function, before the timed
// loop, as cpython_bench.py makes its Pool(2) and ProcessPoolExecutor(2) once
// per operation. Before the loop, a small map (16 one-item tasks) gives every
// worker tasks (a worker that has not answered yet is sent one task at a
// time), so the timed loop does not pay for a worker's first task. The
// start-up rows (at the end) time the making of a pool instead: one per
// iteration.
//
// The map rows move a batch of items per iteration (one whole map) and report
// its size in the `batch` counter: report.py gives their figures per item.
// The round-trip rows submit one call and wait for its result, one at a time.
// Every result is checked: a map against the expected vector (one comparison,
// as the CPython side compares lists), a round trip against 2 * i.
//
// Timed with UseRealTime(): the parent mostly waits for its workers, so its
// CPU time says little, and would make Google Benchmark run far too many
// iterations.

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <ranges>
#include <stdexcept>
#include <vector>

#include "bench_support.hpp"
#include "mproc/context.hpp"
#include "mproc/futures.hpp"
#include "mproc/pool.hpp"

namespace {

constexpr int kWorkers = 2;
constexpr int kBigMapItems = 200000;
constexpr int kSmallMapItems = 20000;
constexpr unsigned kStallSeconds = 60;

// The function of every row: a plain function, sent by reference.
int twice(int x) { return x * 2; }

// The fork server's first child (pool_startup): nothing to do.
void noop() {}

std::vector<int> expected_map(int items) {
  std::vector<int> expected(static_cast<std::size_t>(items));
  for (int i = 0; i < items; ++i) expected[static_cast<std::size_t>(i)] = twice(i);
  return expected;
}

// Gives every worker tasks (see the top of the file).
void warm_up(mproc::Pool& pool) {
  auto results = pool.map(twice, std::views::iota(0, 8 * kWorkers), 1);
  if (results != expected_map(8 * kWorkers)) throw std::runtime_error("warm-up map: wrong results");
}
void warm_up(mproc::ProcessPoolExecutor& executor) {
  int i = 0;
  for (int got : executor.map(twice, std::views::iota(0, 8 * kWorkers))) {
    if (got != twice(i++)) throw std::runtime_error("warm-up map: wrong result");
  }
}

void finish_batch(benchmark::State& state, int batch) {
  state.counters["batch"] = batch;
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * batch);
}

// Pool(2).map(twice, range(items), chunksize): chunksize 0 is the default
// (about four chunks per worker, as Python's).
void pool_map(benchmark::State& state, int items, std::size_t chunksize) {
  try {
    const std::vector<int> expected = expected_map(items);
    mproc::Pool pool(kWorkers);
    warm_up(pool);
    bench::StallAlarm alarm(kStallSeconds);
    for (auto _ : state) {
      std::vector<int> results = pool.map(twice, std::views::iota(0, items), chunksize);
      if (results != expected) {
        state.SkipWithError("map: wrong results");
        break;
      }
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  finish_batch(state, items);
}

void BM_PoolMap200k(benchmark::State& state) { pool_map(state, kBigMapItems, 0); }
BENCHMARK(BM_PoolMap200k)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_PoolMap20kChunksize1(benchmark::State& state) { pool_map(state, kSmallMapItems, 1); }
BENCHMARK(BM_PoolMap20kChunksize1)->Unit(benchmark::kMillisecond)->UseRealTime();

// pool.apply_async(twice, i).get(), one call at a time.
void BM_PoolApplyAsyncRoundTrip(benchmark::State& state) {
  try {
    mproc::Pool pool(kWorkers);
    warm_up(pool);
    bench::StallAlarm alarm(kStallSeconds);
    int i = 0;
    for (auto _ : state) {
      if (pool.apply_async(twice, i).get() != twice(i)) {
        state.SkipWithError("apply_async: wrong result");
        break;
      }
      i = (i + 1) & 0xFFFF;
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}
BENCHMARK(BM_PoolApplyAsyncRoundTrip)->Unit(benchmark::kMicrosecond)->UseRealTime();

// executor.submit(twice, i).result(), one call at a time.
void BM_ExecutorSubmitRoundTrip(benchmark::State& state) {
  try {
    mproc::ProcessPoolExecutor executor(kWorkers);
    warm_up(executor);
    bench::StallAlarm alarm(kStallSeconds);
    int i = 0;
    for (auto _ : state) {
      if (executor.submit(twice, i).result() != twice(i)) {
        state.SkipWithError("submit: wrong result");
        break;
      }
      i = (i + 1) & 0xFFFF;
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}
BENCHMARK(BM_ExecutorSubmitRoundTrip)->Unit(benchmark::kMicrosecond)->UseRealTime();

// executor.map(twice, range(20000)) (chunksize 1, the default), the whole
// result range consumed and checked.
void BM_ExecutorMap20k(benchmark::State& state) {
  try {
    const std::vector<int> expected = expected_map(kSmallMapItems);
    mproc::ProcessPoolExecutor executor(kWorkers);
    warm_up(executor);
    bench::StallAlarm alarm(kStallSeconds);
    for (auto _ : state) {
      std::size_t n = 0;
      bool good = true;
      for (int got : executor.map(twice, std::views::iota(0, kSmallMapItems))) {
        good &= n < expected.size() && got == expected[n];
        ++n;
      }
      if (!good || n != expected.size()) {
        state.SkipWithError("executor map: wrong results");
        break;
      }
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  finish_batch(state, kSmallMapItems);
}
BENCHMARK(BM_ExecutorMap20k)->Unit(benchmark::kMillisecond)->UseRealTime();

// Pool start-up under each start method: each iteration makes a Pool(2)
// with the method's context, waits for one apply() result and lets the
// pool go. The destructor does what leaving Python's `with` does, as the
// CPython side does it: terminate(), then wait for the workers to be gone;
// so the figure runs until the pool is gone. Under forkserver, one child
// before the timed loop starts the server (it then serves every pool of
// this process), as the process start + join row does.
void pool_startup(benchmark::State& state, const char* method) {
  try {
    mproc::Context ctx = mproc::get_context(method);
    if (ctx.start_method() == mproc::StartMethod::forkserver) {
      mproc::Process first = ctx.Process(noop);
      first.start();
      first.join();
      if (first.exitcode() != 0) throw std::runtime_error("the fork server's first child did not exit with 0");
    }
    bench::StallAlarm alarm(kStallSeconds);
    for (auto _ : state) {
      mproc::Pool pool = ctx.Pool(kWorkers);
      if (pool.apply(twice, 1) != twice(1)) {
        state.SkipWithError("apply: wrong result");
        break;
      }
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void BM_PoolStartupFork(benchmark::State& state) { pool_startup(state, "fork"); }
BENCHMARK(BM_PoolStartupFork)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_PoolStartupSpawn(benchmark::State& state) { pool_startup(state, "spawn"); }
BENCHMARK(BM_PoolStartupSpawn)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_PoolStartupForkserver(benchmark::State& state) { pool_startup(state, "forkserver"); }
BENCHMARK(BM_PoolStartupForkserver)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
