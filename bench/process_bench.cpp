// Process and Pipe rows of `make bench`.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "mproc/connection.hpp"
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
