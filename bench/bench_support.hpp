// What the benchmarks that run several processes share: memory the children
// see, children that never outlive the benchmark, a doorbell that starts a
// batch, and an alarm for a benchmark that stalls. Linux calls only (no
// mproc), so that raw_bench uses them too.

#pragma once

#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace bench {

// raw_bench's fresh-run baseline (BM_RawPosixSpawnWaitpid) runs mproc_bench,
// the program the spawn rows run, with this variable set: bench_main.cpp
// then leaves at the top of main(), with this status (a
// status of its own, so that the baseline knows the program left there
// rather than after running benchmarks).
inline constexpr const char* kExitAtOnceVariable = "MPROC_BENCH_EXIT_AT_ONCE";
inline constexpr int kExitAtOnceStatus = 75;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

constexpr std::size_t whole_pages(std::size_t bytes) { return (bytes + 4095) & ~std::size_t{4095}; }

template <class T>
struct SharedDeleter {
  void operator()(T* shared) const noexcept {
    shared->~T();
    munmap(shared, whole_pages(sizeof(T)));
  }
};

// A T in MAP_SHARED memory (whole pages of its own), which children forked
// afterwards share with the parent. Unmapped when the pointer goes.
template <class T>
using SharedPtr = std::unique_ptr<T, SharedDeleter<T>>;

template <class T>
SharedPtr<T> make_shared_memory() {
  static_assert(alignof(T) <= 4096);
  void* memory = mmap(nullptr, whole_pages(sizeof(T)), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) std::abort();
  return SharedPtr<T>(new (memory) T);
}

// A child that loops until the benchmark ends must not outlive it if the
// benchmark dies instead (an abort on a failed check, a signal).
inline void die_with_parent(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
}

// Counts rings; waiters spin a little, then sleep in the kernel. Used to
// start a batch in children waiting for it (and to say a batch is done), so
// the cost of the signal is one cache-line transfer when the waiter is
// spinning, a futex wake-up otherwise; either way once per batch.
struct Doorbell {
  alignas(64) std::atomic<std::uint32_t> rings{0};
  std::atomic<std::uint32_t> sleepers{0};

  void ring() noexcept {
    rings.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers.load(std::memory_order_seq_cst) != 0) futex(FUTEX_WAKE, INT_MAX);
  }

  // Waits until the count of rings differs from `seen`; returns it.
  std::uint32_t wait_past(std::uint32_t seen) noexcept {
    for (int i = 0; i < 4096; ++i) {
      std::uint32_t now = rings.load(std::memory_order_acquire);
      if (now != seen) return now;
      cpu_relax();
    }
    sleepers.fetch_add(1, std::memory_order_seq_cst);
    std::uint32_t now;
    while ((now = rings.load(std::memory_order_seq_cst)) == seen) futex(FUTEX_WAIT, seen);
    sleepers.fetch_sub(1, std::memory_order_relaxed);
    return now;
  }

 private:
  void futex(int op, std::uint32_t value) noexcept {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&rings), op, value, nullptr, nullptr, 0);
  }
};

// Ends the benchmark process, with a message, if it is still alive after
// `seconds`: a child that died in the middle of a batch leaves the parent
// waiting for items that will never come. The children die with it
// (die_with_parent). Set once the children run; off again when it goes.
class StallAlarm {
 public:
  explicit StallAlarm(unsigned seconds) {
    std::signal(SIGALRM, &StallAlarm::fire);
    alarm(seconds);
  }
  ~StallAlarm() { alarm(0); }
  StallAlarm(const StallAlarm&) = delete;
  StallAlarm& operator=(const StallAlarm&) = delete;

 private:
  static void fire(int) {
    static const char message[] = "benchmark stalled (a child died in the middle of a batch?): giving up\n";
    (void)!write(STDERR_FILENO, message, sizeof(message) - 1);
    std::signal(SIGALRM, SIG_DFL);
    raise(SIGALRM);
  }
};

}  // namespace bench
