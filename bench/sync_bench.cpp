// Lock, Event and Value rows of `make bench` (issue 4).

#include <benchmark/benchmark.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>

#include "mproc/event.hpp"
#include "mproc/lock.hpp"
#include "mproc/process.hpp"
#include "mproc/value.hpp"

namespace {

void BM_LockAcquireRelease(benchmark::State& state) {
  mproc::Lock lock;
  for (auto _ : state) {
    benchmark::DoNotOptimize(lock.acquire());
    lock.release();
  }
}
BENCHMARK(BM_LockAcquireRelease);

// The Lockable names forward to acquire() and release(): they should cost
// the same, and std::scoped_lock uses them.
void BM_LockLockUnlock(benchmark::State& state) {
  mproc::Lock lock;
  for (auto _ : state) {
    lock.lock();
    lock.unlock();
  }
}
BENCHMARK(BM_LockLockUnlock);

// A page shared with the child: the flags that start and stop it and what it
// reports back, all outside the primitive being measured.
template <class T>
T* new_shared() {
  static_assert(sizeof(T) <= 4096);
  void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) std::abort();
  return new (page) T;
}

template <class T>
void delete_shared(T* shared) {
  shared->~T();
  munmap(shared, 4096);
}

// A child that loops until the benchmark ends must not outlive it if the
// benchmark dies instead (an abort on a failed check, a signal).
void die_with_parent(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
}

struct PingPongShared {
  std::atomic<std::uint32_t> stop{0};
};

// One round trip: the parent sets `ping` and waits for `pong`; the child
// waits for `ping`, clears it and sets `pong`. Each clears what it waited
// for before the other can set it again, so no set is lost.
void BM_EventPingPong(benchmark::State& state) {
  mproc::Event ping, pong;
  auto* shared = new_shared<PingPongShared>();
  pid_t parent = getpid();
  mproc::Process child([ping, pong, shared, parent]() mutable {
    die_with_parent(parent);
    for (;;) {
      ping.wait();
      ping.clear();
      if (shared->stop.load(std::memory_order_acquire) != 0) return;
      pong.set();
    }
  });
  child.start();
  for (auto _ : state) {
    ping.set();
    pong.wait();
    pong.clear();
  }
  shared->stop.store(1, std::memory_order_release);
  ping.set();
  child.join();
  delete_shared(shared);
}
BENCHMARK(BM_EventPingPong)->Unit(benchmark::kMicrosecond);

struct IncrementShared {
  int counter = 0;  // guarded by the lock under test
  std::atomic<std::uint32_t> child_started{0};
  std::atomic<std::uint32_t> stop{0};
  std::atomic<std::uint64_t> child_increments{0};
};

// The parent's time per increment while a child increments the same int
// without pause, from before the first timed iteration until after the last
// (it starts counting first and stops only when told). `increment` is the
// locked increment under test, `total` reads the final count. The totals
// must add up, or the lock is broken.
template <class Increment, class Total>
void two_process_increments(benchmark::State& state, Increment increment, Total total) {
  auto* shared = new_shared<IncrementShared>();
  pid_t parent = getpid();
  mproc::Process child([increment, shared, parent]() mutable {
    die_with_parent(parent);
    std::uint64_t mine = 0;
    while (shared->stop.load(std::memory_order_relaxed) == 0) {
      increment(*shared);
      if (++mine == 1) shared->child_started.store(1, std::memory_order_release);
    }
    shared->child_increments.store(mine, std::memory_order_release);
  });
  child.start();
  while (shared->child_started.load(std::memory_order_acquire) == 0) sched_yield();
  for (auto _ : state) increment(*shared);
  shared->stop.store(1, std::memory_order_relaxed);
  child.join();
  if (child.exitcode() != 0) std::abort();
  std::uint64_t children = shared->child_increments.load(std::memory_order_acquire);
  std::uint64_t parents = static_cast<std::uint64_t>(state.iterations());
  if (static_cast<std::uint64_t>(total(*shared)) != parents + children) std::abort();
  state.counters["child_share"] = static_cast<double>(children) / static_cast<double>(parents + children);
  delete_shared(shared);
}

void BM_LockedIntIncrementTwoProcesses(benchmark::State& state) {
  mproc::Lock lock;
  two_process_increments(
      state,
      [lock](IncrementShared& shared) mutable {
        std::scoped_lock guard(lock);
        ++shared.counter;
      },
      [](IncrementShared& shared) { return static_cast<unsigned>(shared.counter); });
}
BENCHMARK(BM_LockedIntIncrementTwoProcesses);

// Python's `with v.get_lock(): v.value += 1`: value() and set_value() take
// the (recursive) lock again inside the guard, as the property does.
void BM_ValueIncrementTwoProcesses(benchmark::State& state) {
  mproc::Value<int> v(0);
  two_process_increments(
      state,
      [v](IncrementShared&) mutable {
        std::scoped_lock guard(v);
        v.set_value(v.value() + 1);
      },
      [v](IncrementShared&) { return static_cast<unsigned>(v.value()); });
}
BENCHMARK(BM_ValueIncrementTwoProcesses);

}  // namespace
