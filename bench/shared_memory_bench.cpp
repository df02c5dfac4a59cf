// The SharedMemory row of `make bench`.

#include <benchmark/benchmark.h>

#include "mproc/shared_memory.hpp"

namespace {

// A tracked 1 MiB segment: a generated name, shm_open, ftruncate, mmap, the
// tracker's REGISTER, munmap, shm_unlink and the tracker's UNREGISTER.
void BM_SharedMemoryCreateUnlink1MiB(benchmark::State& state) {
  for (auto _ : state) {
    auto shm = mproc::SharedMemory::create(1 << 20);
    shm.close();
    shm.unlink();
  }
}
BENCHMARK(BM_SharedMemoryCreateUnlink1MiB)->Unit(benchmark::kMicrosecond);

}  // namespace

namespace {

// The same without the tracker: what tracking costs is the difference.
void BM_SharedMemoryCreateUnlink1MiBUntracked(benchmark::State& state) {
  for (auto _ : state) {
    auto shm = mproc::SharedMemory::create(1 << 20, /*track=*/false);
    shm.close();
    shm.unlink();
  }
}
BENCHMARK(BM_SharedMemoryCreateUnlink1MiBUntracked)->Unit(benchmark::kMicrosecond);

}  // namespace
