#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>

#include "bench_support.hpp"

namespace {

// The least a fresh run of this program does, for raw_bench's posix_spawn
// baseline of the spawn rows: the kernel's exec, the dynamic loader (the
// same shared libraries and relocations as a spawn child's), libc's set-up,
// then out. Priority 101 puts this constructor first among the program's own
// (mproc is linked statically: its take-over constructor, and the
// benchmarks' registrations, come after), and the check is one getenv().
[[gnu::constructor(101)]] void exit_at_once_if_asked() {
  if (std::getenv(bench::kExitAtOnceVariable) != nullptr) _exit(bench::kExitAtOnceStatus);
}

}  // namespace

BENCHMARK_MAIN();
