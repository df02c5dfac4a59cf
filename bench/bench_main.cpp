#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>

#include "bench_support.hpp"

// The least a fresh run of this program does, for raw_bench's posix_spawn
// baseline of the spawn rows: the kernel's exec, the dynamic loader, libc's
// set-up and every static initializer (the same as a spawn child's, which
// mproc takes over just before main()), then out at the top of main().
int main(int argc, char** argv) {
  if (std::getenv(bench::kExitAtOnceVariable) != nullptr) _exit(bench::kExitAtOnceStatus);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
