// Semaphore and BoundedSemaphore across processes: counting, timeouts,
// over-release, travel to a running process.

#include "mproc/semaphore.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "mproc/connection.hpp"
#include "support/child.hpp"
#include "support/expect.hpp"
#include "support/shared_words.hpp"

namespace {

using mproc::BoundedSemaphore;
using mproc::Semaphore;
using mproc::testing::ChildProcess;
using mproc::testing::expect_throw_containing;
using mproc::testing::SharedWords;
using namespace std::chrono_literals;

TEST(SemaphoreAcquire, TakesUnitsUntilNoneAreLeftThenTimesOut) {
  Semaphore semaphore(2);
  EXPECT_EQ(semaphore.get_value(), 2);
  EXPECT_TRUE(semaphore.acquire());
  EXPECT_TRUE(semaphore.acquire(false));
  EXPECT_FALSE(semaphore.acquire(false));
  EXPECT_FALSE(semaphore.acquire(true, 20ms));
  semaphore.release();
  EXPECT_EQ(semaphore.get_value(), 1);
  EXPECT_TRUE(semaphore.try_lock_for(1s));
}

TEST(SemaphoreAcquire, ANegativeInitialValueIsUsageError) {
  expect_throw_containing<mproc::UsageError>([] { Semaphore s(-1); }, ">= 0");
}

TEST(SemaphoreAcquire, LimitsHowManyProcessesAreInside) {
  SharedWords words;
  Semaphore slots(2);
  std::vector<ChildProcess> children;
  for (int i = 0; i < 4; ++i) {
    children.push_back(ChildProcess::fork([&] {
      for (int round = 0; round < 200; ++round) {
        std::scoped_lock hold(slots);
        long inside = ++words[0];
        long seen = words[1].load();
        while (inside > seen && !words[1].compare_exchange_weak(seen, inside)) {
        }
        --words[0];
      }
      return 0;
    }));
  }
  for (auto& child : children) EXPECT_EQ(child.wait(), 0);
  EXPECT_LE(words[1].load(), 2);
  EXPECT_GE(words[1].load(), 1);
  EXPECT_EQ(slots.get_value(), 2);
}

TEST(SemaphoreRelease, WakesAWaiterInAnotherProcess) {
  Semaphore semaphore(0);
  auto child = ChildProcess::fork([&] { return semaphore.acquire(true, 10s) ? 0 : 1; });
  semaphore.release();
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(semaphore.get_value(), 0);
}

TEST(BoundedSemaphoreRelease, BeyondTheInitialValueIsUsageError) {
  BoundedSemaphore semaphore(1);
  expect_throw_containing<mproc::UsageError>([&] { semaphore.release(); }, "released too many times");
  semaphore.acquire();
  semaphore.release();
  expect_throw_containing<mproc::UsageError>([&] { semaphore.release(); }, "released too many times");
  BoundedSemaphore none(0);
  expect_throw_containing<mproc::UsageError>([&] { none.release(); }, "released too many times");
  Semaphore unbounded(1);
  unbounded.release();
  EXPECT_EQ(unbounded.get_value(), 2);
}

TEST(SemaphoreHandle, TravelsToAProcessThatWasAlreadyRunning) {
  auto [parent_end, child_end] = mproc::Pipe();
  auto child = ChildProcess::fork([child_end = child_end]() mutable {
    BoundedSemaphore semaphore = child_end.recv<BoundedSemaphore>();
    if (!semaphore.acquire(true, 10s)) return 1;
    child_end.send(semaphore.get_value());
    return 0;
  });
  BoundedSemaphore semaphore(1);
  semaphore.acquire();
  parent_end.send(semaphore);
  std::this_thread::sleep_for(20ms);
  semaphore.release();
  ASSERT_TRUE(parent_end.poll(10s));
  EXPECT_EQ(parent_end.recv<int>(), 0);
  EXPECT_EQ(child.wait(), 0);
}

}  // namespace
