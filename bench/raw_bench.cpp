// The raw-system-call baselines of `make bench`: what the kernel and the
// hardware allow, with no library in the way. This file calls Linux directly
// on purpose; it is the yardstick, not part of mproc.

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace {

void BM_RawMemcpy1MiB(benchmark::State& state) {
  constexpr std::size_t kBytes = 1 << 20;
  auto src = std::make_unique<char[]>(kBytes);
  auto dst = std::make_unique<char[]>(kBytes);
  std::memset(src.get(), 1, kBytes);
  std::memset(dst.get(), 0, kBytes);
  for (auto _ : state) {
    std::memcpy(dst.get(), src.get(), kBytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBytes));
}
BENCHMARK(BM_RawMemcpy1MiB);

// The first touch of an anonymous page: what every copy-on-write fault in a
// forked child, and every fresh allocation, costs on this machine. Virtual
// machines vary widely here, and it explains much of the process rows.
void BM_RawPageFault(benchmark::State& state) {
  constexpr std::size_t kPages = 256;
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  for (auto _ : state) {
    void* memory = mmap(nullptr, kPages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) std::abort();
    auto* bytes = static_cast<volatile char*>(memory);
    for (std::size_t i = 0; i < kPages; ++i) bytes[i * page] = 1;
    munmap(memory, kPages * page);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kPages));
}
BENCHMARK(BM_RawPageFault)->Unit(benchmark::kMicrosecond);

// What SharedMemory create + close + unlink costs at the least: the calls,
// with a fixed name and nothing else.
void BM_RawShmCreateUnlink1MiB(benchmark::State& state) {
  constexpr std::size_t kBytes = 1 << 20;
  const char* name = "/mproc_raw_bench_shm";
  for (auto _ : state) {
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, kBytes) != 0) std::abort();
    void* memory = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (memory == MAP_FAILED) std::abort();
    munmap(memory, kBytes);
    close(fd);
    shm_unlink(name);
  }
}
BENCHMARK(BM_RawShmCreateUnlink1MiB)->Unit(benchmark::kMicrosecond);

void BM_RawForkWaitpid(benchmark::State& state) {
  for (auto _ : state) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    int status = 0;
    waitpid(pid, &status, 0);
  }
}
BENCHMARK(BM_RawForkWaitpid)->Unit(benchmark::kMicrosecond);

// One round trip: the parent writes a byte, the child echoes it.
void BM_RawSocketpairPingPong(benchmark::State& state) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) std::abort();
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    char byte;
    while (read(fds[1], &byte, 1) == 1 && byte != 0) {
      if (write(fds[1], &byte, 1) != 1) break;
    }
    _exit(0);
  }
  close(fds[1]);
  char byte = 1;
  for (auto _ : state) {
    if (write(fds[0], &byte, 1) != 1 || read(fds[0], &byte, 1) != 1) std::abort();
  }
  byte = 0;
  (void)!write(fds[0], &byte, 1);
  close(fds[0]);
  waitpid(pid, nullptr, 0);
}
BENCHMARK(BM_RawSocketpairPingPong)->Unit(benchmark::kMicrosecond);

// A child writes 1 MiB chunks to a socketpair; the parent reads each whole.
void BM_RawSocketpairStream1MiB(benchmark::State& state) {
  constexpr std::size_t kSize = 1 << 20;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) std::abort();
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    std::vector<char> data(kSize, 7);
    for (;;) {
      for (std::size_t done = 0; done < kSize;) {
        ssize_t n = send(fds[1], data.data() + done, kSize - done, MSG_NOSIGNAL);
        if (n <= 0) _exit(0);
        done += static_cast<std::size_t>(n);
      }
    }
  }
  close(fds[1]);
  std::vector<char> buffer(kSize);
  for (auto _ : state) {
    for (std::size_t done = 0; done < kSize;) {
      ssize_t n = read(fds[0], buffer.data() + done, kSize - done);
      if (n <= 0) std::abort();
      done += static_cast<std::size_t>(n);
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kSize));
  close(fds[0]);
  waitpid(pid, nullptr, 0);
}
BENCHMARK(BM_RawSocketpairStream1MiB)->Unit(benchmark::kMicrosecond);

long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value) {
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, value, nullptr, nullptr, 0);
}

// Waits until *word == want, sleeping in the kernel meanwhile.
void await(std::atomic<std::uint32_t>* word, std::uint32_t want) {
  for (std::uint32_t seen; (seen = word->load(std::memory_order_acquire)) != want;) {
    futex(word, FUTEX_WAIT, seen);
  }
}

// One round trip through a futex in shared memory: the parent moves the
// counter to an odd value and wakes the child, which moves it to even and
// wakes the parent. Both sleep in FUTEX_WAIT while waiting.
void BM_RawFutexPingPong(benchmark::State& state) {
  void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) std::abort();
  auto* word = new (page) std::atomic<std::uint32_t>(0);
  constexpr std::uint32_t kStop = 0xffffffff;
  pid_t pid = fork();
  if (pid == 0) {
    for (std::uint32_t next = 1;; next += 2) {
      for (std::uint32_t seen; (seen = word->load(std::memory_order_acquire)) != next;) {
        if (seen == kStop) _exit(0);
        futex(word, FUTEX_WAIT, seen);
      }
      word->store(next + 1, std::memory_order_release);
      futex(word, FUTEX_WAKE, 1);
    }
  }
  std::uint32_t next = 1;
  for (auto _ : state) {
    word->store(next, std::memory_order_release);
    futex(word, FUTEX_WAKE, 1);
    await(word, next + 1);
    next += 2;
  }
  word->store(kStop, std::memory_order_release);
  futex(word, FUTEX_WAKE, 1);
  waitpid(pid, nullptr, 0);
  munmap(page, 4096);
}
BENCHMARK(BM_RawFutexPingPong)->Unit(benchmark::kMicrosecond);

// A minimal futex mutex (Drepper's "Futexes are tricky", mutex 3): 0 free,
// 1 held, 2 held with possible sleepers. Taking it free is one
// compare-and-swap, giving it back one exchange; only a contended release
// makes a system call. No spinning: this is the floor, not a tuned lock.
struct RawFutexMutex {
  std::atomic<std::uint32_t> word{0};

  void lock() {
    std::uint32_t seen = 0;
    if (word.compare_exchange_strong(seen, 1, std::memory_order_acquire, std::memory_order_relaxed)) return;
    // Announce a sleeper before sleeping, so the holder's release wakes us;
    // whoever takes it this way keeps the 2, since others may sleep too.
    if (seen != 2) seen = word.exchange(2, std::memory_order_acquire);
    while (seen != 0) {
      futex(&word, FUTEX_WAIT, 2);
      seen = word.exchange(2, std::memory_order_acquire);
    }
  }

  void unlock() {
    if (word.exchange(0, std::memory_order_release) == 2) futex(&word, FUTEX_WAKE, 1);
  }
};

void* shared_page() {
  void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) std::abort();
  return page;
}

// In shared memory as the mproc Lock is, so that the cost is the same kind of
// memory (a MAP_SHARED page), even though nobody else touches it.
void BM_RawFutexLockUncontended(benchmark::State& state) {
  void* page = shared_page();
  auto* mutex = new (page) RawFutexMutex;
  for (auto _ : state) {
    mutex->lock();
    mutex->unlock();
  }
  munmap(page, 4096);
}
BENCHMARK(BM_RawFutexLockUncontended);

struct RawIncrementShared {
  RawFutexMutex mutex;
  int counter = 0;  // guarded by mutex
  std::atomic<std::uint32_t> child_started{0};
  std::atomic<std::uint32_t> stop{0};
  std::atomic<std::uint64_t> child_increments{0};
};

// The parent's time per increment of an int under the mutex while a child
// increments it too, without pause, from before the first timed iteration
// until after the last. The totals must add up, or the lock is broken.
void BM_RawFutexLockedIncrement(benchmark::State& state) {
  void* page = shared_page();
  auto* shared = new (page) RawIncrementShared;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    // Never outlive the benchmark, whatever way it ends.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    std::uint64_t mine = 0;
    while (shared->stop.load(std::memory_order_relaxed) == 0) {
      shared->mutex.lock();
      ++shared->counter;
      shared->mutex.unlock();
      if (++mine == 1) shared->child_started.store(1, std::memory_order_release);
    }
    shared->child_increments.store(mine, std::memory_order_release);
    _exit(0);
  }
  while (shared->child_started.load(std::memory_order_acquire) == 0) sched_yield();
  for (auto _ : state) {
    shared->mutex.lock();
    ++shared->counter;
    shared->mutex.unlock();
  }
  shared->stop.store(1, std::memory_order_relaxed);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) std::abort();
  std::uint64_t child = shared->child_increments.load(std::memory_order_acquire);
  std::uint64_t parent_increments = static_cast<std::uint64_t>(state.iterations());
  if (static_cast<std::uint64_t>(static_cast<unsigned>(shared->counter)) != parent_increments + child) std::abort();
  state.counters["child_share"] = static_cast<double>(child) / static_cast<double>(parent_increments + child);
  munmap(page, 4096);
}
BENCHMARK(BM_RawFutexLockedIncrement);

}  // namespace

BENCHMARK_MAIN();
