// Process and Pipe rows of `make bench`.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <exception>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/context.hpp"
#include "mproc/process.hpp"

namespace {

void BM_ProcessStartJoin(benchmark::State& state) {
  for (auto _ : state) {
    mproc::Process p([] {});
    p.start();
    p.join();
  }
}
BENCHMARK(BM_ProcessStartJoin)->Unit(benchmark::kMicrosecond);

// The target of the start-method rows: under spawn and forkserver a target
// travels by reference, so it is a plain function.
void noop() {}

// Starts and joins a child of `ctx`; false if it did not end well (a child
// that could not start exits with 1).
bool start_join(const mproc::Context& ctx) {
  mproc::Process p = ctx.Process(noop);
  p.start();
  p.join();
  return p.exitcode() == 0;
}

// The timed loop of the start-method rows; with `warm_up`, one child first,
// untimed.
void start_join_loop(benchmark::State& state, const mproc::Context& ctx, bool warm_up) {
  try {
    if (warm_up && !start_join(ctx)) {
      state.SkipWithError("the first child did not exit with 0");
      return;
    }
    for (auto _ : state) {
      if (!start_join(ctx)) {
        state.SkipWithError("the child did not exit with 0");
        break;
      }
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// spawn: each child is a fresh run of this program (/proc/self/exe), taken
// over by mproc's constructor before main(). raw_bench's baseline
// (BM_RawPosixSpawnWaitpid) runs this same program and leaves in its first
// constructor; beyond that, a spawn child runs the constructors before
// mproc's (this program's benchmark registrations), reads its request, checks
// its target against the program's symbol table, runs it and leaves by the
// child exit path, and the parent makes the socket, sends the request and
// watches the child through a pidfd. Real time: the parent mostly waits (its
// CPU time would make Google Benchmark run far too many iterations).
void BM_ProcessStartJoinSpawn(benchmark::State& state) {
  start_join_loop(state, mproc::get_context("spawn"), false);
}
BENCHMARK(BM_ProcessStartJoinSpawn)->Unit(benchmark::kMicrosecond)->UseRealTime();

// forkserver: the server (a fresh run of this program, started on the first
// child, kept until this process ends) forks each child. One child before
// the loop starts the server: the row times a child, not the server.
void BM_ProcessStartJoinForkserver(benchmark::State& state) {
  start_join_loop(state, mproc::get_context("forkserver"), true);
}
BENCHMARK(BM_ProcessStartJoinForkserver)->Unit(benchmark::kMicrosecond)->UseRealTime();

// One round trip: the parent sends an int, a child sends it back.
void BM_PipeRoundTrip(benchmark::State& state) {
  auto [mine, theirs] = mproc::Pipe();
  mproc::Process echo([mine = mine, theirs = theirs]() mutable {
    mine.close();  // the child's copy of the parent's end: else no end of file
    try {
      for (;;) theirs.send(theirs.recv<int>());
    } catch (const mproc::EOFError&) {
    }
  });
  echo.start();
  theirs.close();
  int value = 0;
  for (auto _ : state) {
    mine.send(value);
    value = mine.recv<int>() + 1;
  }
  mine.close();
  echo.join();
}
BENCHMARK(BM_PipeRoundTrip)->Unit(benchmark::kMicrosecond);

// A child streams 1 MiB messages with send_bytes; the parent receives each
// into one buffer with recv_bytes_into.
void BM_PipeSendBytes1MiB(benchmark::State& state) {
  constexpr std::size_t kSize = 1 << 20;
  auto [mine, theirs] = mproc::Pipe();
  mproc::Process streamer([mine = mine, theirs = theirs]() mutable {
    mine.close();
    std::vector<std::byte> data(kSize, std::byte{7});
    try {
      for (;;) theirs.send_bytes(data);
    } catch (const std::system_error&) {  // EPIPE: the reader is done
    }
  });
  streamer.start();
  theirs.close();
  std::vector<std::byte> buffer(kSize);
  for (auto _ : state) benchmark::DoNotOptimize(mine.recv_bytes_into(buffer));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kSize));
  mine.close();
  streamer.join();
}
BENCHMARK(BM_PipeSendBytes1MiB)->Unit(benchmark::kMicrosecond);

}  // namespace
