// Condition across processes: wait and notify, timeouts, wait_for, notify(n)
// waking exactly n of the current waiters, over a Lock or an RLock.

#include "mproc/condition.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "mproc/connection.hpp"
#include "support/child.hpp"
#include "support/expect.hpp"
#include "support/shared_words.hpp"

namespace {

using mproc::Condition;
using mproc::testing::ChildProcess;
using mproc::testing::expect_throw_containing;
using mproc::testing::reaches;
using mproc::testing::SharedWords;
using namespace std::chrono_literals;

TEST(ConditionWait, TimesOutWithFalseAndNeedsTheLock) {
  Condition condition;
  expect_throw_containing<mproc::UsageError>([&] { condition.wait(1ms); }, "un-acquired");
  expect_throw_containing<mproc::UsageError>([&] { condition.notify(); }, "un-acquired");
  std::scoped_lock hold(condition);
  EXPECT_FALSE(condition.wait(20ms));
  EXPECT_FALSE(condition.wait_for([] { return false; }, 20ms));
  EXPECT_TRUE(condition.wait_for([] { return true; }, 0ms));
}

TEST(ConditionNotify, WakesAWaiterInAnotherProcessThroughWaitFor) {
  SharedWords words;
  for (bool over_plain_lock : {false, true}) {
    Condition condition = over_plain_lock ? Condition(mproc::Lock()) : Condition();
    words[0] = 0;
    auto child = ChildProcess::fork([&] {
      std::scoped_lock hold(condition);
      return condition.wait_for([&] { return words[0].load() == 1; }, 10s) ? 0 : 1;
    });
    std::this_thread::sleep_for(20ms);
    {
      std::scoped_lock hold(condition);
      words[0] = 1;
      condition.notify();
    }
    EXPECT_EQ(child.wait(), 0);
  }
}

TEST(ConditionWait, ReleasesEveryLevelOfAnRLockAndRestoresThem) {
  Condition condition;
  condition.acquire();
  condition.acquire();
  auto child = ChildProcess::fork([&] {
    if (!condition.acquire(true, 10s)) return 1;  // possible only if wait released both levels
    condition.notify();
    condition.release();
    return 0;
  });
  EXPECT_TRUE(condition.wait(10s));
  EXPECT_EQ(child.wait(), 0);
  condition.release();
  condition.release();
  std::thread other([&] {
    EXPECT_TRUE(condition.acquire(false));
    condition.release();
  });
  other.join();
}

TEST(ConditionNotify, WakesExactlyNOfTheCurrentWaitersNotThoseThatTimedOut) {
  SharedWords words;  // 0: waiting, 1: woken, 2: timed out
  Condition condition;
  std::vector<ChildProcess> early;
  for (int i = 0; i < 3; ++i) {
    early.push_back(ChildProcess::fork([&] {
      std::scoped_lock hold(condition);
      return condition.wait(10ms) ? 1 : 0;
    }));
  }
  for (auto& child : early) EXPECT_EQ(child.wait(), 0);  // all timed out

  std::vector<ChildProcess> current;
  for (int i = 0; i < 3; ++i) {
    current.push_back(ChildProcess::fork([&] {
      std::scoped_lock hold(condition);
      ++words[0];
      bool woken = condition.wait(20s);
      ++words[woken ? 1 : 2];
      return 0;
    }));
  }
  ASSERT_TRUE(reaches(words[0], 3));
  {
    std::scoped_lock hold(condition);  // all three are inside wait() now
    condition.notify(2);
  }
  ASSERT_TRUE(reaches(words[1], 2));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(words[1].load(), 2) << "notify(2) woke more than two";
  {
    std::scoped_lock hold(condition);
    condition.notify_all();
  }
  ASSERT_TRUE(reaches(words[1], 3));
  EXPECT_EQ(words[2].load(), 0);
  for (auto& child : current) EXPECT_EQ(child.wait(), 0);
}

TEST(ConditionHandle, TravelsToAProcessThatWasAlreadyRunning) {
  auto [parent_end, child_end] = mproc::Pipe();
  auto child = ChildProcess::fork([child_end = child_end]() mutable {
    Condition condition = child_end.recv<Condition>();
    std::scoped_lock hold(condition);
    child_end.send(1);
    return condition.wait(10s) ? 0 : 1;
  });
  Condition condition(mproc::Lock{});
  parent_end.send(condition);
  ASSERT_TRUE(parent_end.poll(10s));
  (void)parent_end.recv<int>();
  {
    std::scoped_lock hold(condition);  // the child is waiting: it released the lock
    condition.notify();
  }
  EXPECT_EQ(child.wait(), 0);
}

// A process that starts waiting right after a notify (here the notifier
// itself) must not take the wake-up meant for the process already waiting.
TEST(ConditionNotify, IsNotTakenByAWaiterThatCameAfterIt) {
  SharedWords words;
  Condition condition;
  auto child = ChildProcess::fork([&] {
    std::scoped_lock hold(condition);
    words[0] = 1;
    return condition.wait(10s) ? 0 : 1;
  });
  ASSERT_TRUE(reaches(words[0], 1));
  {
    std::scoped_lock hold(condition);  // the child is inside wait() now
    condition.notify();
    EXPECT_FALSE(condition.wait(300ms));  // came after the notify: times out
  }
  EXPECT_EQ(child.wait(), 0);  // the waiter was woken
}

TEST(ConditionOwnerDeath, TheNextAcquirerOfItsLockGetsOwnerDiedError) {
  for (bool over_plain_lock : {false, true}) {
    Condition condition = over_plain_lock ? Condition(mproc::Lock()) : Condition();
    auto child = ChildProcess::fork([&] {
      condition.acquire();
      ::raise(SIGKILL);
      return 1;
    });
    EXPECT_EQ(child.wait(), -SIGKILL);
    expect_throw_containing<mproc::OwnerDiedError>([&] { condition.acquire(true, 10s); }, "died");
    EXPECT_TRUE(condition.acquire(false));  // usable again
    condition.release();
  }
}

// A waiter whose wait ends while the lock's holder is dead is told so, and
// holds the lock, as after any wait: the scoped lock around it releases it.
TEST(ConditionOwnerDeath, AWaiterTakingTheLockBackIsToldAndHoldsIt) {
  for (bool over_plain_lock : {false, true}) {
    SharedWords words;
    Condition condition = over_plain_lock ? Condition(mproc::Lock()) : Condition();
    auto child = ChildProcess::fork([&] {
      if (!reaches(words[0], 1)) return 1;  // the parent is waiting
      condition.acquire();
      condition.notify();
      ::raise(SIGKILL);  // dies holding the lock the waiter needs back
      return 1;
    });
    {
      std::scoped_lock hold(condition);
      words[0] = 1;
      expect_throw_containing<mproc::OwnerDiedError>([&] { condition.wait(10s); }, "holds it again");
      condition.notify();  // needs the lock: throws UsageError if not held
    }
    EXPECT_EQ(child.wait(), -SIGKILL);
    EXPECT_TRUE(condition.acquire(false));  // released by the scoped lock
    condition.release();
  }
}

// Two notifies before the first notified waiter runs (it is stopped): the
// waiters that came between them share only the second wake-up, and the
// stopped one still has its own when it runs.
TEST(ConditionNotify, KeepsEachWakeUpForAWaiterOlderThanTheNotify) {
  SharedWords words;
  Condition condition;
  auto waiter = [&](std::size_t index, std::chrono::milliseconds timeout) {
    return ChildProcess::fork([&, index, timeout] {
      std::scoped_lock hold(condition);
      words[index] = 1;
      words[index + 10] = condition.wait(timeout) ? 1 : 2;
      return 0;
    });
  };
  auto in_wait = [&](std::size_t index) {
    if (!reaches(words[index], 1)) return false;
    std::scoped_lock hold(condition);  // free only once the waiter is inside wait()
    return true;
  };
  auto first = waiter(0, 20s);
  ASSERT_TRUE(in_wait(0));
  ::kill(first.pid(), SIGSTOP);
  {
    std::scoped_lock hold(condition);
    condition.notify();  // for the first waiter, which cannot run now
  }
  auto second = waiter(1, 500ms);
  auto third = waiter(2, 500ms);
  ASSERT_TRUE(in_wait(1));
  ASSERT_TRUE(in_wait(2));
  {
    std::scoped_lock hold(condition);
    condition.notify();  // for one of the second and third
  }
  EXPECT_EQ(second.wait(), 0);
  EXPECT_EQ(third.wait(), 0);
  ::kill(first.pid(), SIGCONT);
  EXPECT_EQ(first.wait(), 0);
  EXPECT_EQ(words[10].load(), 1) << "the stopped waiter lost its wake-up";
  EXPECT_EQ((words[11].load() == 1) + (words[12].load() == 1), 1) << "the later waiters got " << words[11].load()
                                                                   << " and " << words[12].load();
}

}  // namespace
