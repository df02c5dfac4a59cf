// Lock and RLock across processes and threads: exclusion, Python's release
// rules, timeouts, the Lockable names, travel to a running process, and
// owner death (real SIGKILLs).

#include "mproc/lock.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <mutex>
#include <random>
#include <thread>

#include "mproc/connection.hpp"
#include "mproc/errors.hpp"
#include "support/child.hpp"
#include "support/expect.hpp"
#include "support/shared_words.hpp"

namespace {

using mproc::Lock;
using mproc::RLock;
using mproc::testing::ChildProcess;
using mproc::testing::expect_throw_containing;
using mproc::testing::reaches;
using mproc::testing::SharedWords;
using namespace std::chrono_literals;

constexpr int kIncrements = 20000;

template <class L>
void increment_under(L& lock, SharedWords& words) {
  for (int i = 0; i < kIncrements; ++i) {
    std::scoped_lock hold(lock);
    words.plain(0) = words.plain(0) + 1;
  }
}

// A child and the parent increment a plain counter under `L`: none is lost.
template <class L>
void expect_excludes_other_processes() {
  SharedWords words;
  L lock;
  auto child = ChildProcess::fork([&] {
    increment_under(lock, words);
    return 0;
  });
  increment_under(lock, words);
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(words[0].load(), 2 * kIncrements);
}

TEST(LockAcquire, ExcludesOtherProcesses) { expect_excludes_other_processes<Lock>(); }

TEST(RLockAcquire, ExcludesOtherProcesses) { expect_excludes_other_processes<RLock>(); }

TEST(LockAcquire, NonBlockingFailsAndTimeoutExpiresWhileHeld) {
  Lock lock;
  EXPECT_TRUE(lock.acquire());
  EXPECT_FALSE(lock.acquire(false));
  EXPECT_FALSE(lock.try_lock());
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(lock.acquire(true, 50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 45ms);
  EXPECT_FALSE(lock.try_lock_for(10ms));
  EXPECT_FALSE(lock.try_lock_until(std::chrono::system_clock::now() + 10ms));
  lock.release();
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
}

TEST(LockRelease, AnotherProcessMayReleaseItAsInPython) {
  Lock lock;
  lock.acquire();
  auto child = ChildProcess::fork([&] {
    lock.release();
    return 0;
  });
  EXPECT_EQ(child.wait(), 0);
  EXPECT_TRUE(lock.acquire(true, 5s));
  lock.release();
}

TEST(LockRelease, ReleasingAnUnheldLockIsUsageError) {
  Lock lock;
  expect_throw_containing<mproc::UsageError>([&] { lock.release(); }, "released too many times");
  EXPECT_TRUE(lock.acquire(false));  // still usable
  lock.release();
}

TEST(RLockAcquire, CountsLevelsAndOnlyTheOwnerReleases) {
  RLock lock;
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.try_lock());
  std::thread other([&] {
    EXPECT_FALSE(lock.acquire(false));
    expect_throw_containing<mproc::UsageError>([&] { lock.release(); }, "un-acquired");
  });
  other.join();
  lock.release();
  lock.release();
  std::thread still_held([&] { EXPECT_FALSE(lock.acquire(true, 10ms)); });
  still_held.join();
  lock.release();
  std::thread free_now([&] {
    EXPECT_TRUE(lock.acquire(false));
    lock.release();
  });
  free_now.join();
  expect_throw_containing<mproc::UsageError>([&] { lock.release(); }, "un-acquired");
}

TEST(LockHandle, TravelsToAProcessThatWasAlreadyRunning) {
  auto [parent_end, child_end] = mproc::Pipe();
  auto child = ChildProcess::fork([child_end = child_end]() mutable {
    Lock lock = child_end.recv<Lock>();
    RLock rlock = child_end.recv<RLock>();
    bool free_while_held = lock.acquire(false) || rlock.acquire(false);
    child_end.send(free_while_held);
    (void)child_end.recv<int>();  // the parent has released both
    bool taken = lock.acquire(true, 5s) && rlock.acquire(true, 5s);
    child_end.send(taken);
    lock.release();  // the parent takes them back below
    rlock.release();
    return 0;
  });
  Lock lock;  // made after the fork: the child must receive it
  RLock rlock;
  lock.acquire();
  rlock.acquire();
  parent_end.send(lock);
  parent_end.send(rlock);
  ASSERT_TRUE(parent_end.poll(10s));
  EXPECT_FALSE(parent_end.recv<bool>());
  lock.release();
  rlock.release();
  parent_end.send(0);
  ASSERT_TRUE(parent_end.poll(10s));
  EXPECT_TRUE(parent_end.recv<bool>());
  EXPECT_EQ(child.wait(), 0);
  EXPECT_TRUE(lock.acquire(true, 5s));
  EXPECT_TRUE(rlock.acquire(true, 5s));
  lock.release();
  rlock.release();
}

TEST(LockHandle, AMessageOfAnotherKindIsRefused) {
  auto [a, b] = mproc::Pipe();
  a.send(Lock());
  expect_throw_containing<mproc::DecodeError>([&] { (void)b.recv<RLock>(); }, "");
}

// The child takes the lock and dies holding it.
template <class L>
void expect_owner_death_reported(L& lock) {
  auto child = ChildProcess::fork([&] {
    lock.acquire();
    ::raise(SIGKILL);
    return 1;
  });
  EXPECT_EQ(child.wait(), -SIGKILL);
  auto start = std::chrono::steady_clock::now();
  expect_throw_containing<mproc::OwnerDiedError>([&] { lock.acquire(true, 10s); }, "died");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(lock.acquire(false));  // usable again
  lock.release();
}

TEST(LockOwnerDeath, TheNextAcquirerGetsOwnerDiedErrorAndTheLockIsFreeAfter) {
  Lock lock;
  expect_owner_death_reported(lock);
  RLock rlock;
  expect_owner_death_reported(rlock);
}

TEST(LockOwnerDeath, AWaiterAlreadyAsleepIsToldToo) {
  Lock lock;
  auto holder = ChildProcess::fork([&] {
    lock.acquire();
    for (;;) ::pause();
    return 0;
  });
  while (lock.try_lock()) {  // wait until the child holds it
    lock.unlock();
    std::this_thread::sleep_for(1ms);
  }
  std::thread killer([&] {
    std::this_thread::sleep_for(100ms);
    ::kill(holder.pid(), SIGKILL);
  });
  expect_throw_containing<mproc::OwnerDiedError>([&] { lock.acquire(true, 10s); }, "died");
  killer.join();
  EXPECT_EQ(holder.wait(), -SIGKILL);
}

// SIGKILL at random moments of a child that takes and releases the lock in
// a loop: whatever the moment, the parent gets the lock or OwnerDiedError,
// never a hang.
TEST(LockOwnerDeath, KilledAtRandomMomentsNeverLeavesTheLockStuck) {
  std::mt19937 random(12345);
  for (int round = 0; round < 20; ++round) {
    Lock lock;
    RLock rlock;
    auto child = ChildProcess::fork([&] {
      for (;;) {
        std::scoped_lock hold(lock, rlock);
      }
      return 0;
    });
    std::this_thread::sleep_for(std::chrono::microseconds(random() % 3000));
    ::kill(child.pid(), SIGKILL);
    EXPECT_EQ(child.wait(), -SIGKILL);
    // Each lock is free, or its holder died holding it (told once).
    auto take = [](auto& l) {
      try {
        return l.acquire(true, 10s);
      } catch (const mproc::OwnerDiedError&) {
        return l.acquire(false);
      }
    };
    ASSERT_TRUE(take(lock)) << "round " << round;
    ASSERT_TRUE(take(rlock)) << "round " << round;
    lock.release();
    rlock.release();
    EXPECT_TRUE(lock.try_lock());
    EXPECT_TRUE(rlock.try_lock());
    lock.unlock();
    rlock.unlock();
  }
}

// A thread that ends holding an RLock still holds it: a later thread (which
// may get the dead one's stack and thread id) is not taken for its owner.
TEST(RLockOwner, IsNotInheritedByALaterThread) {
  RLock rlock;
  for (int i = 0; i < 20; ++i) {
    std::thread([&] { rlock.acquire(); }).join();
    bool taken = true;
    std::thread([&] { taken = rlock.acquire(false); }).join();
    ASSERT_FALSE(taken) << "round " << i;
    rlock = RLock();
  }
}

// try_lock() polled in a loop looks at the holder's life at most every
// 50 ms, but still sees its death soon after.
TEST(LockOwnerDeath, APollingTryLockSeesTheDeathSoonAfter) {
  SharedWords words;
  Lock lock;
  auto holder = ChildProcess::fork([&] {
    lock.acquire();
    words[0] = 1;
    for (;;) ::pause();
    return 0;
  });
  ASSERT_TRUE(reaches(words[0], 1));
  auto polling_until = std::chrono::steady_clock::now() + 100ms;
  while (std::chrono::steady_clock::now() < polling_until) ASSERT_FALSE(lock.try_lock());
  ::kill(holder.pid(), SIGKILL);
  EXPECT_EQ(holder.wait(), -SIGKILL);
  auto died = std::chrono::steady_clock::now();
  bool told = false;
  while (!told && std::chrono::steady_clock::now() - died < 5s) {
    try {
      ASSERT_FALSE(lock.try_lock());
    } catch (const mproc::OwnerDiedError&) {
      told = true;
    }
  }
  EXPECT_TRUE(told);
  EXPECT_LT(std::chrono::steady_clock::now() - died, 1s);
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
}

}  // namespace
