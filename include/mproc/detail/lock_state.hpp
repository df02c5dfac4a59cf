// mproc/detail/lock_state.hpp
//
// The shared-memory layout of Lock and RLock, and who the caller is as an
// owner, so that taking a free lock, taking an RLock again and releasing
// are inline: no call and no system call. Internal; the protocol is
// described in src/shared/lock_word.hpp.

#pragma once

#include <atomic>
#include <cstdint>

namespace mproc::detail {

// The lock word: the owner's pid (0 when free) and this bit, set when
// someone sleeps on it.
inline constexpr std::uint32_t kLockSleepers = 1u << 31;

struct LockState {
  std::atomic<std::uint32_t> word;
  // The thread that last acquired it (its pid is in the word): whether the
  // caller holds it, for Condition.
  std::atomic<std::uint64_t> owner_thread;
};

struct RLockState {
  std::atomic<std::uint32_t> word;
  std::atomic<std::uint32_t> levels;  // written only by the owner
  std::atomic<std::uint64_t> owner_thread;
};

// This process's pid, without a system call: set by the runtime when it
// starts and in every forked child (0 until then).
inline std::atomic<std::uint32_t> cached_process_id{0};
std::uint32_t process_id_slow();

inline std::uint32_t lock_owner_id() {
  std::uint32_t id = cached_process_id.load(std::memory_order_relaxed);
  return id != 0 ? id : process_id_slow();
}

// The calling thread: a number no other thread of this process has had, so
// that a thread started after one that died holding an RLock is not taken
// for its owner (a thread's address or pthread_self() can be reused).
inline std::atomic<std::uint64_t> next_thread_token{1};
inline std::uint64_t thread_token() noexcept {
  static thread_local const std::uint64_t token = next_thread_token.fetch_add(1, std::memory_order_relaxed);
  return token;
}

// Takes a free lock word (one compare-and-swap).
inline bool try_take_free(std::atomic<std::uint32_t>& word, std::uint32_t me) noexcept {
  std::uint32_t expected = 0;
  return word.compare_exchange_strong(expected, me, std::memory_order_acquire, std::memory_order_relaxed);
}

// Whether this thread of this process holds the lock.
inline bool held_by_this_thread(const std::atomic<std::uint32_t>& word,
                                const std::atomic<std::uint64_t>& owner_thread) noexcept {
  std::uint32_t id = cached_process_id.load(std::memory_order_relaxed);
  // Acquire: the owner_thread read after it is the one written by whoever
  // took the word (a Lock may be released by another thread and retaken).
  return id != 0 && (word.load(std::memory_order_acquire) & ~kLockSleepers) == id &&
         owner_thread.load(std::memory_order_relaxed) == thread_token();
}

}  // namespace mproc::detail
