// Barrier across processes: distinct indices, the action once per round,
// timeouts, abort and reset breaking it for every party, and a handle sent
// to a process that was already running.

#include "mproc/barrier.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <stdexcept>
#include <thread>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/errors.hpp"
#include "support/child.hpp"
#include "support/expect.hpp"
#include "support/shared_words.hpp"

namespace {

using mproc::Barrier;
using mproc::BrokenBarrierError;
using mproc::testing::ChildProcess;
using mproc::testing::expect_throw_containing;
using mproc::testing::reaches;
using mproc::testing::SharedWords;
using namespace std::chrono_literals;

// What the barrier actions below count into: set before forking, so every
// party sees the same shared words.
SharedWords* action_words = nullptr;

// Counts the action's runs in word 0 and checks that no party of this round
// has left wait() yet (word 1 counts parties out of wait()).
void count_action() {
  long runs = (*action_words)[0].fetch_add(1) + 1;
  if ((*action_words)[1].load() != (runs - 1) * 3) (*action_words)[2].fetch_add(1);  // a party left early
}

void throwing_action() { throw std::runtime_error("the action failed"); }

// Waits (polling) until `n` parties wait at `barrier`, at most 10 s.
bool parties_waiting(const Barrier& barrier, int n) {
  for (int i = 0; i < 10000 && barrier.n_waiting() < n; ++i) std::this_thread::sleep_for(1ms);
  return barrier.n_waiting() == n;
}

// Returns how a party's wait() ended: its index, or -1 for BrokenBarrierError.
int wait_or_broken(Barrier& barrier, std::chrono::milliseconds timeout = 10s) {
  try {
    return barrier.wait(timeout);
  } catch (const BrokenBarrierError&) {
    return -1;
  }
}

TEST(BarrierWait, GivesEachProcessADistinctIndex) {
  constexpr int kParties = 4;
  SharedWords words;
  Barrier barrier(kParties);
  EXPECT_EQ(barrier.parties(), kParties);
  std::vector<ChildProcess> children;
  for (int i = 0; i < kParties - 1; ++i) {
    children.push_back(ChildProcess::fork([&] {
      int index = barrier.wait(10s);
      words[0].fetch_or(1L << index);
      return 0;
    }));
  }
  int index = barrier.wait(10s);
  words[0].fetch_or(1L << index);
  for (auto& child : children) EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(words[0].load(), (1L << kParties) - 1);  // 0, 1, 2 and 3, each once
  EXPECT_FALSE(barrier.broken());
}

TEST(BarrierWait, TheFirstToArriveGetsZero) {
  Barrier barrier(2);
  auto child = ChildProcess::fork([&] { return barrier.wait(10s); });
  ASSERT_TRUE(parties_waiting(barrier, 1));  // the child arrived first
  EXPECT_EQ(barrier.wait(10s), 1);
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(barrier.n_waiting(), 0);
}

TEST(BarrierAction, RunsOnceEachRoundBeforeAnyPartyLeaves) {
  SharedWords words;
  action_words = &words;
  constexpr int kRounds = 20;
  Barrier barrier(3, count_action);
  auto party = [&] {
    for (int round = 0; round < kRounds; ++round) {
      barrier.wait(10s);
      words[1].fetch_add(1);
      // All three must have left before anyone starts the next round's
      // check: wait for them here so the action's check is exact.
      if (!reaches(words[1], (round + 1) * 3L)) return 1;
    }
    return 0;
  };
  std::vector<ChildProcess> children;
  for (int i = 0; i < 2; ++i) children.push_back(ChildProcess::fork(party));
  EXPECT_EQ(party(), 0);
  for (auto& child : children) EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(words[0].load(), kRounds);
  EXPECT_EQ(words[2].load(), 0) << "a party left wait() before the round's action ran";
  action_words = nullptr;
}

TEST(BarrierWait, ATimeoutBreaksItForEveryPartyUntilReset) {
  Barrier barrier(3);
  auto child = ChildProcess::fork([&] { return wait_or_broken(barrier, 60s) == -1 ? 0 : 1; });
  ASSERT_TRUE(parties_waiting(barrier, 1));
  auto started = std::chrono::steady_clock::now();
  expect_throw_containing<BrokenBarrierError>([&] { barrier.wait(100ms); }, "broken");
  EXPECT_GE(std::chrono::steady_clock::now() - started, 100ms);
  EXPECT_EQ(child.wait(), 0);  // the other party was woken with the error, not left waiting
  EXPECT_TRUE(barrier.broken());
  expect_throw_containing<BrokenBarrierError>([&] { barrier.wait(10s); }, "broken");

  barrier.reset();
  EXPECT_FALSE(barrier.broken());
  std::vector<ChildProcess> children;
  for (int i = 0; i < 2; ++i) {
    children.push_back(ChildProcess::fork([&] { return wait_or_broken(barrier) >= 0 ? 0 : 1; }));
  }
  EXPECT_GE(wait_or_broken(barrier), 0);
  for (auto& c : children) EXPECT_EQ(c.wait(), 0);
}

TEST(BarrierWait, UsesTheBarriersDefaultTimeout) {
  Barrier barrier(2, nullptr, 50ms);
  expect_throw_containing<BrokenBarrierError>([&] { barrier.wait(); }, "broken");
  EXPECT_TRUE(barrier.broken());
}

TEST(BarrierAbort, BreaksWaitingPartiesAndLaterOnes) {
  Barrier barrier(3);
  std::vector<ChildProcess> children;
  for (int i = 0; i < 2; ++i) {
    children.push_back(ChildProcess::fork([&] { return wait_or_broken(barrier, 60s) == -1 ? 0 : 1; }));
  }
  ASSERT_TRUE(parties_waiting(barrier, 2));
  barrier.abort();
  for (auto& child : children) EXPECT_EQ(child.wait(), 0);
  EXPECT_TRUE(barrier.broken());
  EXPECT_EQ(barrier.n_waiting(), 0);
  EXPECT_EQ(wait_or_broken(barrier), -1);
}

TEST(BarrierReset, WakesWaitingPartiesWithTheErrorAndLeavesItUsable) {
  Barrier barrier(2);
  auto child = ChildProcess::fork([&] { return wait_or_broken(barrier, 60s) == -1 ? 0 : 1; });
  ASSERT_TRUE(parties_waiting(barrier, 1));
  barrier.reset();
  EXPECT_EQ(child.wait(), 0);
  EXPECT_FALSE(barrier.broken());
  EXPECT_EQ(barrier.n_waiting(), 0);
  auto next = ChildProcess::fork([&] { return wait_or_broken(barrier) >= 0 ? 0 : 1; });
  EXPECT_GE(wait_or_broken(barrier), 0);
  EXPECT_EQ(next.wait(), 0);
}

TEST(BarrierAction, ThatThrowsReachesItsCallerAndBreaksTheBarrier) {
  Barrier barrier(2, throwing_action);
  auto child = ChildProcess::fork([&] { return wait_or_broken(barrier, 60s) == -1 ? 0 : 1; });
  ASSERT_TRUE(parties_waiting(barrier, 1));
  expect_throw_containing<std::runtime_error>([&] { barrier.wait(10s); }, "the action failed");
  EXPECT_EQ(child.wait(), 0);
  EXPECT_TRUE(barrier.broken());
}

TEST(BarrierHandle, WorksWithAProcessThatWasAlreadyRunning) {
  SharedWords words;
  action_words = &words;
  auto [parent_end, child_end] = mproc::Pipe();
  auto child = ChildProcess::fork([&, child_end = child_end]() mutable {
    auto barrier = child_end.recv<Barrier>();
    words[3] = barrier.wait(10s);
    words[4] = barrier.wait(10s);
    return 0;
  });
  Barrier barrier(2, count_action);
  parent_end.send(barrier);
  int first = barrier.wait(10s);
  int second = barrier.wait(10s);
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(first + words[3].load(), 1);  // each round, the two parties got 0 and 1
  EXPECT_EQ(second + words[4].load(), 1);
  EXPECT_EQ(words[0].load(), 2);  // the action crossed with the handle and ran once per round
  action_words = nullptr;
}

TEST(BarrierConstruction, NeedsAPartyAndAnEmptyHandleIsRefused) {
  EXPECT_THROW(Barrier(0), std::invalid_argument);
  EXPECT_THROW(Barrier(-3), std::invalid_argument);
  Barrier empty;
  expect_throw_containing<mproc::UsageError>([&] { empty.wait(); }, "empty handle");
  expect_throw_containing<mproc::UsageError>([&] { (void)empty.parties(); }, "empty handle");
  Barrier one(1);
  EXPECT_EQ(one.wait(), 0);  // a round of one never waits
  EXPECT_EQ(one.wait(), 0);
}

// A party killed inside wait() never leaves its round: later waits end with
// BrokenBarrierError at their timeout instead of waiting for ever.
TEST(BarrierWait, APartyKilledWhileWaitingCostsLaterPartiesOnlyTheirTimeout) {
  Barrier barrier(2);
  auto child = ChildProcess::fork([&] { return barrier.wait(60s); });
  ASSERT_TRUE(parties_waiting(barrier, 1));
  ::kill(child.pid(), SIGKILL);
  EXPECT_EQ(child.wait(), -SIGKILL);
  EXPECT_EQ(barrier.wait(10s), 1);  // completes the round the dead party was in
  auto started = std::chrono::steady_clock::now();
  expect_throw_containing<BrokenBarrierError>([&] { barrier.wait(200ms); }, "broken");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_TRUE(barrier.broken());
}

}  // namespace
