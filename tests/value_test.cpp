// Value and RawValue across processes: what one process writes the others
// read, increments under the lock are exact, the lock is the one given or
// a shared RLock, handles travel to running processes, and a holder's death
// is reported.

#include "mproc/value.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/errors.hpp"
#include "support/child.hpp"
#include "support/expect.hpp"
#include "support/shared_words.hpp"

namespace {

using mproc::RawValue;
using mproc::Value;
using mproc::testing::ChildProcess;
using mproc::testing::expect_throw_containing;
using mproc::testing::reaches;
using mproc::testing::SharedWords;
using namespace std::chrono_literals;

struct Point {
  double x;
  double y;
};

TEST(ValueSetValue, IsSeenByAChildAndTheChildsWriteByTheParent) {
  Value<int> value(41);
  auto child = ChildProcess::fork([&] {
    if (value.value() != 41) return 1;
    value.set_value(42);
    return 0;
  });
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(value.value(), 42);
  EXPECT_EQ(Value<int>().value(), 0);  // zero by default
}

TEST(ValueLock, MakesIncrementsFromFourProcessesExact) {
  constexpr int kProcesses = 4;
  constexpr int kIncrements = 20000;
  Value<long> counter(0);
  std::vector<ChildProcess> children;
  for (int i = 0; i < kProcesses; ++i) {
    children.push_back(ChildProcess::fork([&] {
      for (int n = 0; n < kIncrements; ++n) {
        std::scoped_lock hold(counter);  // an RLock: value() and set_value() take it again
        counter.set_value(counter.value() + 1);
      }
      return 0;
    }));
  }
  for (auto& child : children) EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(counter.value(), kProcesses * kIncrements);
}

TEST(ValueLock, IsTheOneGivenAndGetLockReturnsIt) {
  mproc::Lock lock;
  Value<int, mproc::Lock> value(7, lock);
  EXPECT_EQ(value.get_lock(), lock);
  lock.acquire();
  EXPECT_FALSE(value.try_lock());  // the same lock, held
  lock.release();
  EXPECT_TRUE(value.try_lock());
  EXPECT_FALSE(lock.acquire(false));
  value.unlock();
  EXPECT_EQ(value.value(), 7);
  EXPECT_EQ(value.get_obj().value(), 7);
}

TEST(ValueLock, HeldByAChildKeepsTheParentOut) {
  SharedWords words;
  Value<int> value(0);
  auto child = ChildProcess::fork([&] {
    auto lock = value.get_lock();  // the lock value() takes
    std::scoped_lock hold(lock);
    words[0] = 1;
    if (!reaches(words[1], 1)) return 1;
    return 0;
  });
  ASSERT_TRUE(reaches(words[0], 1));
  EXPECT_FALSE(value.acquire(true, 50ms));
  words[1] = 1;
  EXPECT_TRUE(value.acquire(true, 10s));
  value.release();
  EXPECT_EQ(child.wait(), 0);
}

TEST(RawValue, HoldsAStructSharedWithAChild) {
  RawValue<Point> point(Point{1.5, -2.0});
  auto child = ChildProcess::fork([&] {
    if (point->x != 1.5 || point->y != -2.0) return 1;
    point->y = 8.25;
    return 0;
  });
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ((*point).y, 8.25);
  point.set_value(Point{0, 0});
  EXPECT_EQ(point.value().x, 0.0);
}

TEST(ValueHandle, WorksWithAProcessThatWasAlreadyRunning) {
  auto [parent_end, child_end] = mproc::Pipe();
  auto child = ChildProcess::fork([child_end = child_end]() mutable {
    auto [value, raw] = child_end.recv<std::pair<Value<double>, RawValue<int>>>();
    for (int i = 0; i < 1000; ++i) {
      std::scoped_lock hold(value);
      value.set_value(value.value() + 0.5);
    }
    raw.set_value(raw.value() * 2);
    child_end.send(true);
    return 0;
  });
  Value<double> value(0.0);
  RawValue<int> raw(21);
  parent_end.send(std::make_pair(value, raw));
  for (int i = 0; i < 1000; ++i) {
    std::scoped_lock hold(value);
    value.set_value(value.value() + 0.5);
  }
  EXPECT_TRUE(parent_end.recv<bool>());
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(value.value(), 1000.0);
  EXPECT_EQ(raw.value(), 42);
}

TEST(ValueOwnerDeath, TheNextReaderGetsOwnerDiedErrorAndTheValueWorksAfter) {
  Value<int> value(5);
  auto child = ChildProcess::fork([&] {
    value.acquire();
    ::raise(SIGKILL);
    return 1;
  });
  EXPECT_EQ(child.wait(), -SIGKILL);
  expect_throw_containing<mproc::OwnerDiedError>([&] { (void)value.value(); }, "died");
  EXPECT_EQ(value.value(), 5);
  value.set_value(6);
  EXPECT_EQ(value.value(), 6);
}

// SIGKILL at random moments of a child incrementing under the lock: the
// parent always gets on, and no increment is half-done (an int store is).
TEST(ValueOwnerDeath, KilledAtRandomMomentsNeverLeavesTheValueStuck) {
  std::mt19937 random(4242);
  for (int round = 0; round < 15; ++round) {
    Value<int> value(0);
    auto child = ChildProcess::fork([&] {
      for (;;) {
        std::scoped_lock hold(value);
        value.set_value(value.value() + 1);
      }
      return 0;
    });
    std::this_thread::sleep_for(std::chrono::microseconds(random() % 3000));
    ::kill(child.pid(), SIGKILL);
    EXPECT_EQ(child.wait(), -SIGKILL);
    int seen = -1;
    try {
      seen = value.value();
    } catch (const mproc::OwnerDiedError&) {
      seen = value.value();
    }
    EXPECT_GE(seen, 0) << "round " << round;
    value.set_value(seen + 1);
    EXPECT_EQ(value.value(), seen + 1);
  }
}

}  // namespace
