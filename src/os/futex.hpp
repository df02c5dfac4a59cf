// Futexes on words in shared memory: the sleeping and waking under every
// synchronization primitive. The words are shared between processes, so the
// calls are the non-private (shared) futex operations.

#pragma once

#include <atomic>
#include <cstdint>

#include "os/error.hpp"
#include "os/timeout.hpp"

namespace mproc::os {

using FutexWord = std::atomic<std::uint32_t>;
static_assert(FutexWord::is_always_lock_free && sizeof(FutexWord) == sizeof(std::uint32_t));

// Sleeps while `*word == expected`, for at most `timeout` (none: no limit).
// Returns true if it slept and was woken, or the word had already changed
// (the caller re-checks in both cases), false once the timeout has passed.
// A signal's interruption counts as a wake-up.
Result<bool> futex_wait(const FutexWord& word, std::uint32_t expected, Timeout timeout) noexcept;

// Wakes at most `count` sleepers on `word`; returns how many woke.
int futex_wake(const FutexWord& word, int count) noexcept;

// Wakes every sleeper on `word`.
int futex_wake_all(const FutexWord& word) noexcept;

// Whether process `pid` is alive: it exists and is not a zombie waiting for
// its parent to reap it. A pid can be reused, so "alive" may mean a newer
// process of the same number. Several system calls: for slow paths only.
bool process_alive(int pid) noexcept;

// Lets another thread that is ready to run have this CPU (sched_yield): for
// a long spin, so that it never keeps from running the thread it waits for.
void yield_cpu() noexcept;

// Tells the CPU that this is a spin-wait loop.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace mproc::os
