// The raw-system-call baselines of `make bench`: what the kernel and the
// hardware allow, with no library in the way. This file calls Linux directly
// on purpose; it is the yardstick, not part of mproc.

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench_support.hpp"

namespace {

void memcpy_bandwidth(benchmark::State& state, std::size_t bytes) {
  auto src = std::make_unique<char[]>(bytes);
  auto dst = std::make_unique<char[]>(bytes);
  std::memset(src.get(), 1, bytes);
  std::memset(dst.get(), 0, bytes);
  for (auto _ : state) {
    std::memcpy(dst.get(), src.get(), bytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

void BM_RawMemcpy1MiB(benchmark::State& state) { memcpy_bandwidth(state, 1 << 20); }
BENCHMARK(BM_RawMemcpy1MiB);

// The size of the queue rows' large items: the copy stays in the caches.
void BM_RawMemcpy64KiB(benchmark::State& state) { memcpy_bandwidth(state, 64 << 10); }
BENCHMARK(BM_RawMemcpy64KiB);

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

// The program `name` next to this one (mproc_bench, built in the same
// directory); empty if this program's path cannot be read.
std::string sibling_program(const char* name) {
  char self[PATH_MAX];
  ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length <= 0) return {};
  std::string path(self, static_cast<std::size_t>(length));
  return path.substr(0, path.rfind('/') + 1) + name;
}

// The baseline of the spawn row: posix_spawn + waitpid of mproc_bench, the
// very program the row's children run (same executable, same shared
// libraries), which leaves at the top of main() when it finds
// kExitAtOnceVariable (bench_main.cpp). Plain posix_spawn: no file actions,
// no attributes; the environment is built once, outside the loop. What a
// spawn child does beyond this is mproc's cost: reading its request,
// running the target, the exit path.
// Real time: the parent sleeps while the child runs.
void BM_RawPosixSpawnWaitpid(benchmark::State& state) {
  std::string program = sibling_program("mproc_bench");
  if (program.empty() || access(program.c_str(), X_OK) != 0) {
    state.SkipWithError("mproc_bench is not next to raw_bench");
    return;
  }
  std::vector<char*> environment;
  for (char** variable = environ; *variable != nullptr; ++variable) environment.push_back(*variable);
  std::string exit_at_once = std::string(bench::kExitAtOnceVariable) + "=1";
  environment.push_back(exit_at_once.data());
  environment.push_back(nullptr);
  // Should the variable ever be missed, the program only lists its
  // benchmarks (and the status check below fails) instead of running them.
  std::string list_only = "--benchmark_list_tests=true";
  char* arguments[] = {program.data(), list_only.data(), nullptr};
  for (auto _ : state) {
    pid_t pid = 0;
    if (posix_spawn(&pid, program.c_str(), nullptr, nullptr, arguments, environment.data()) != 0) {
      state.SkipWithError("posix_spawn failed");
      break;
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != bench::kExitAtOnceStatus) {
      state.SkipWithError("mproc_bench did not leave at the top of main()");
      break;
    }
  }
}
BENCHMARK(BM_RawPosixSpawnWaitpid)->Unit(benchmark::kMicrosecond)->UseRealTime();

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

// --- A single-producer single-consumer ring: the queue rows' baseline -------

// What shared memory allows a queue between two processes: a ring of
// kCapacity slots (a power of two) in MAP_SHARED memory, the producer's tail
// and the consumer's head each on a cache line of its own, published with
// release stores and read with acquire loads. Each side keeps its own index
// and a cached copy of the other's, and reads the other's cache line only
// when that copy says the ring is full (or empty). A side that must wait
// spins, then yields the CPU between looks: nothing is paid per item to
// announce sleepers, as a futex would need; a child that dies leaves the
// other waiting until the StallAlarm ends the run.
template <class Slot, std::uint32_t Capacity>
struct SpscRing {
  static constexpr std::uint32_t kCapacity = Capacity;
  static_assert(Capacity != 0 && (Capacity & (Capacity - 1)) == 0);
  alignas(64) std::atomic<std::uint32_t> tail{0};  // written by the producer only
  alignas(64) std::atomic<std::uint32_t> head{0};  // written by the consumer only
  alignas(64) Slot slots[Capacity];
};

class Backoff {
 public:
  void pause() {
    if (spins_ < 256) {
      ++spins_;
      bench::cpu_relax();
    } else {
      sched_yield();
    }
  }

 private:
  int spins_ = 0;
};

template <class Ring>
class RingProducer {
 public:
  explicit RingProducer(Ring& ring) : ring_(&ring) {}

  // Waits for room, then fill(slot) and publishes it.
  template <class Fill>
  void push(Fill fill) {
    if (tail_ - cached_head_ == Ring::kCapacity) {
      Backoff backoff;
      while (tail_ - (cached_head_ = ring_->head.load(std::memory_order_acquire)) == Ring::kCapacity) backoff.pause();
    }
    fill(ring_->slots[tail_ & (Ring::kCapacity - 1)]);
    ring_->tail.store(++tail_, std::memory_order_release);
  }

 private:
  Ring* ring_;
  std::uint32_t tail_ = 0;
  std::uint32_t cached_head_ = 0;
};

template <class Ring>
class RingConsumer {
 public:
  explicit RingConsumer(Ring& ring) : ring_(&ring) {}

  // Waits for an item, then take(slot) and frees it.
  template <class Take>
  void pop(Take take) {
    if (head_ == cached_tail_) {
      Backoff backoff;
      while (head_ == (cached_tail_ = ring_->tail.load(std::memory_order_acquire))) backoff.pause();
    }
    take(ring_->slots[head_ & (Ring::kCapacity - 1)]);
    ring_->head.store(++head_, std::memory_order_release);
  }

 private:
  Ring* ring_;
  std::uint32_t head_ = 0;
  std::uint32_t cached_tail_ = 0;
};

// The ring, and what starts a batch, in memory shared with the child.
template <class Ring>
struct RingBatchShared {
  bench::Doorbell go;
  std::atomic<std::uint32_t> stop{0};
  Ring ring;
};

// A producer child that runs produce() after each ring of `go`, until `stop`.
// Told to stop and reaped when this goes, whichever way the benchmark ends;
// killed (and reaped) if it does not end within seconds.
template <class Shared>
class BatchChild {
 public:
  template <class Produce>
  BatchChild(Shared& shared, Produce produce) : shared_(shared) {
    pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) std::abort();
    if (pid_ == 0) {
      bench::die_with_parent(parent);
      std::uint32_t seen = 0;
      for (;;) {
        seen = shared.go.wait_past(seen);
        if (shared.stop.load(std::memory_order_acquire) != 0) _exit(0);
        produce();
      }
    }
  }
  BatchChild(const BatchChild&) = delete;
  BatchChild& operator=(const BatchChild&) = delete;
  ~BatchChild() { (void)stop(); }

  // Returns whether the child exited with 0.
  bool stop() {
    if (pid_ <= 0) return true;
    shared_.stop.store(1, std::memory_order_release);
    shared_.go.ring();
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    pid_t reaped;
    while ((reaped = waitpid(pid_, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline) {
      usleep(1000);
    }
    if (reaped == 0) {
      kill(pid_, SIGKILL);
      reaped = waitpid(pid_, &status, 0);
    }
    pid_ = -1;
    return reaped > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

 private:
  Shared& shared_;
  pid_t pid_ = -1;
};

constexpr std::uint32_t kIntBatch = 10000;    // as queue_bench.cpp's
constexpr std::uint32_t kBlobBatch = 256;     // as queue_bench.cpp's
constexpr std::size_t kBlobBytes = 64 << 10;  // as queue_bench.cpp's

// A child pushes the ints 0 .. kIntBatch - 1, the parent pops and checks them.
void BM_RawSpscRingInt(benchmark::State& state) {
  using Ring = SpscRing<int, 4096>;  // as many slots as an unbounded mproc Queue has
  auto shared = bench::make_shared_memory<RingBatchShared<Ring>>();
  BatchChild child(*shared, [producer = RingProducer<Ring>(shared->ring)]() mutable {
    for (std::uint32_t i = 0; i < kIntBatch; ++i) producer.push([i](int& slot) { slot = static_cast<int>(i); });
  });
  RingConsumer<Ring> consumer(shared->ring);
  bench::StallAlarm alarm(60);
  for (auto _ : state) {
    shared->go.ring();
    bool good = true;
    for (std::uint32_t i = 0; i < kIntBatch; ++i) {
      consumer.pop([&](const int& slot) { good &= slot == static_cast<int>(i); });
    }
    if (!good) {
      state.SkipWithError("an item came wrong or out of order");
      break;
    }
  }
  if (!child.stop() && !state.error_occurred()) state.SkipWithError("the child failed");
  state.counters["batch"] = kIntBatch;
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * kIntBatch);
}
BENCHMARK(BM_RawSpscRingInt)->Unit(benchmark::kMicrosecond)->UseRealTime();

// 64 KiB records: the child copies its record into a slot, the parent copies
// each out into its buffer and checks the ends.
void BM_RawSpscRing64KiB(benchmark::State& state) {
  struct Record {
    alignas(64) char bytes[kBlobBytes];
  };
  using Ring = SpscRing<Record, 32>;  // 2 MiB: a little faster here than 8 or 16
  auto shared = bench::make_shared_memory<RingBatchShared<Ring>>();
  std::memset(shared->ring.slots, 0, sizeof(shared->ring.slots));  // no first touch while timed
  std::vector<char> blob(kBlobBytes, 'q');
  blob.back() = 'z';
  BatchChild child(*shared, [producer = RingProducer<Ring>(shared->ring), &blob]() mutable {
    for (std::uint32_t i = 0; i < kBlobBatch; ++i) {
      producer.push([&](Record& slot) { std::memcpy(slot.bytes, blob.data(), kBlobBytes); });
    }
  });
  RingConsumer<Ring> consumer(shared->ring);
  std::vector<char> buffer(kBlobBytes);
  bench::StallAlarm alarm(60);
  for (auto _ : state) {
    shared->go.ring();
    bool good = true;
    for (std::uint32_t i = 0; i < kBlobBatch; ++i) {
      consumer.pop([&](const Record& slot) { std::memcpy(buffer.data(), slot.bytes, kBlobBytes); });
      good &= buffer.front() == 'q' && buffer.back() == 'z';
      benchmark::ClobberMemory();
    }
    if (!good) {
      state.SkipWithError("a record came wrong");
      break;
    }
  }
  if (!child.stop() && !state.error_occurred()) state.SkipWithError("the child failed");
  state.counters["batch"] = kBlobBatch;
  auto items = static_cast<std::int64_t>(state.iterations()) * kBlobBatch;
  state.SetItemsProcessed(items);
  state.SetBytesProcessed(items * static_cast<std::int64_t>(kBlobBytes));
}
BENCHMARK(BM_RawSpscRing64KiB)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
