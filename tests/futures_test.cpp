// ProcessPoolExecutor, Future, as_completed and wait: concurrent.futures'
// semantics, and a lost worker failing only its own future.

#include "mproc/futures.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mproc/process.hpp"
#include "support/child.hpp"
#include "support/expect.hpp"
#include "support/shared_words.hpp"

namespace {

using mproc::Future;
using mproc::ProcessPoolExecutor;
using mproc::testing::expect_throw_containing;
using mproc::testing::SharedWords;
using namespace std::chrono_literals;

int square(int x) { return x * x; }
int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
int fail_with(int code) { throw std::range_error("code " + std::to_string(code)); }
std::string worker_name() { return mproc::current_process().name(); }
void nothing() {}

SharedWords& shared() {
  static SharedWords* words = new SharedWords(4);
  return *words;
}
// Made before any executor forks, so that its workers share it.
[[maybe_unused]] SharedWords& g_shared = shared();

int announce_then_sleep(int ms) {
  shared()[0].fetch_add(1);
  return sleep_ms(ms);
}

TEST(FutureResult, ReturnsTheValueRethrowsTheErrorAndTimesOut) {
  ProcessPoolExecutor executor(2);
  Future<int> f = executor.submit(square, 12);
  EXPECT_EQ(f.result(), 144);
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.running());
  EXPECT_EQ(f.exception(), nullptr);
  Future<int> bad = executor.submit(fail_with, 7);
  EXPECT_THROW(bad.result(), std::range_error);
  ASSERT_NE(bad.exception(), nullptr);
  expect_throw_containing<std::range_error>([&] { std::rethrow_exception(bad.exception()); }, "code 7");
  Future<int> slow = executor.submit(sleep_ms, 300);
  EXPECT_THROW(slow.result(20ms), mproc::TimeoutError);
  EXPECT_THROW(slow.exception(20ms), mproc::TimeoutError);
  EXPECT_EQ(slow.result(5s), 300);
  executor.submit(nothing).result();
  EXPECT_EQ(executor.submit(worker_name).result().rfind("ForkProcess-", 0), 0u);
}

TEST(FutureCancel, CancelsOnlyWhatNoWorkerHasYet) {
  ProcessPoolExecutor executor(1);
  Future<int> running = executor.submit(announce_then_sleep, 300);
  Future<int> waiting = executor.submit(square, 3);
  ASSERT_TRUE(mproc::testing::reaches(shared()[0], 1));
  EXPECT_TRUE(running.running());
  EXPECT_FALSE(running.cancel());
  EXPECT_TRUE(waiting.cancel());
  EXPECT_TRUE(waiting.cancelled());
  EXPECT_TRUE(waiting.done());
  EXPECT_THROW(waiting.result(), mproc::CancelledError);
  EXPECT_THROW((void)waiting.exception(), mproc::CancelledError);
  EXPECT_EQ(running.result(), 300);
  EXPECT_FALSE(running.cancelled());
}

TEST(FutureCallbacks, RunWhenDoneOrAtOnceIfDoneAlready) {
  ProcessPoolExecutor executor(1);
  std::atomic<int> seen{0};
  Future<int> f = executor.submit(sleep_ms, 100);
  f.add_done_callback([&](const Future<int>& done) { seen += done.result(); });
  f.result();
  for (int i = 0; i < 100 && seen.load() == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(seen.load(), 100);
  std::thread::id where;
  f.add_done_callback([&](const Future<int>&) { where = std::this_thread::get_id(); });
  EXPECT_EQ(where, std::this_thread::get_id());
}

TEST(AsCompleted, YieldsEachFutureOnceInTheOrderTheyFinish) {
  ProcessPoolExecutor executor(3);
  std::vector<Future<int>> futures{executor.submit(sleep_ms, 400), executor.submit(sleep_ms, 50),
                                   executor.submit(sleep_ms, 200)};
  futures.push_back(futures[1]);  // a duplicate is yielded once
  std::vector<int> order;
  for (const Future<int>& f : mproc::as_completed(futures)) order.push_back(f.result());
  EXPECT_EQ(order, (std::vector<int>{50, 200, 400}));
}

TEST(AsCompleted, ThrowsTimeoutErrorWhenSomeAreNotDoneInTime) {
  ProcessPoolExecutor executor(2);
  std::vector<Future<int>> futures{executor.submit(sleep_ms, 10), executor.submit(sleep_ms, 700)};
  int yielded = 0;
  auto completed = mproc::as_completed(futures, 200ms);
  expect_throw_containing<mproc::TimeoutError>(
      [&] {
        for (const Future<int>& f : completed) yielded += f.done() ? 1 : 0;
      },
      "1 of 2");
  EXPECT_EQ(yielded, 1);
}

TEST(Wait, ReturnsWhenItsConditionHolds) {
  ProcessPoolExecutor executor(2);
  std::vector<Future<int>> futures{executor.submit(sleep_ms, 30), executor.submit(sleep_ms, 600)};
  auto first = mproc::wait(futures, mproc::FIRST_COMPLETED);
  EXPECT_EQ(first.done.size(), 1u);
  EXPECT_EQ(first.not_done.size(), 1u);
  auto timed = mproc::wait(futures, 50ms);
  EXPECT_EQ(timed.not_done.size(), 1u);
  auto all = mproc::wait(futures);
  EXPECT_EQ(all.done.size(), 2u);
  EXPECT_TRUE(all.not_done.empty());

  std::vector<Future<int>> mixed{executor.submit(fail_with, 1), executor.submit(sleep_ms, 600)};
  auto start = std::chrono::steady_clock::now();
  auto failed = mproc::wait(mixed, mproc::FIRST_EXCEPTION);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
  ASSERT_EQ(failed.done.size(), 1u);
  EXPECT_NE(failed.done[0].exception(), nullptr);
}

TEST(ExecutorMap, YieldsInOrderReadsLazilyAndTimesOut) {
  ProcessPoolExecutor executor(2);
  long sum = 0;
  for (int s : executor.map(square, std::views::iota(0, 20000))) sum += s;
  EXPECT_EQ(sum, 19999L * 20000L * 39999L / 6);
  std::atomic<long> read{0};
  auto endless = std::views::iota(0) | std::views::transform([&read](int i) {
                   ++read;
                   return i;
                 });
  auto results = executor.map(square, endless);
  auto it = results.begin();
  for (int i = 0; i < 1000; ++i, ++it) EXPECT_EQ(*it, i * i);
  EXPECT_LE(read.load(), 1000 + 512);
  auto timed = executor.map(sleep_ms, std::vector<int>{10, 700}, 200ms);
  auto t = timed.begin();
  EXPECT_EQ(*t, 10);
  ++t;
  EXPECT_THROW((void)*t, mproc::TimeoutError);
}

TEST(ExecutorMap, StartedBeforeShutdownYieldsEverything) {
  ProcessPoolExecutor executor(2);
  auto results = executor.map(square, std::views::iota(0, 3000));
  executor.shutdown();
  long count = 0;
  for (int value : results) {
    EXPECT_EQ(value, static_cast<int>(count * count));
    ++count;
  }
  EXPECT_EQ(count, 3000);
}

TEST(ExecutorDestructor, RunInADoneCallbackLetsTheOtherFuturesFinish) {
  std::optional<Future<int>> other;
  std::vector<int> pids;
  {
    auto executor = std::make_shared<ProcessPoolExecutor>(2);
    pids = executor->worker_pids();
    other = executor->submit(sleep_ms, 300);
    executor->submit(square, 1).add_done_callback([executor](const Future<int>&) {});
  }  // the callback holds the last reference
  EXPECT_EQ(other->result(10s), 300);
  for (int pid : pids) EXPECT_TRUE(mproc::testing::ends_within(pid, 10s)) << pid;  // torn down afterwards
}

TEST(ExecutorShutdown, WaitsRefusesNewWorkAndCanCancelWhatWaits) {
  ProcessPoolExecutor executor(1);
  Future<int> first = executor.submit(announce_then_sleep, 200);
  Future<int> queued = executor.submit(square, 5);
  executor.shutdown(true);
  EXPECT_EQ(first.result(), 200);
  EXPECT_EQ(queued.result(), 25);
  EXPECT_THROW(executor.submit(square, 1), mproc::UsageError);

  shared()[0] = 0;
  ProcessPoolExecutor cancelling(1);
  Future<int> busy = cancelling.submit(announce_then_sleep, 200);
  Future<int> dropped = cancelling.submit(square, 5);
  ASSERT_TRUE(mproc::testing::reaches(shared()[0], 1));
  cancelling.shutdown(true, true);
  EXPECT_EQ(busy.result(), 200);
  EXPECT_TRUE(dropped.cancelled());
}

// Fails after a while, so that the test submits before the executor breaks.
void failing_initializer() {
  std::this_thread::sleep_for(200ms);
  throw std::runtime_error("cannot connect");
}

TEST(ExecutorBroken, AFailingInitializerBreaksTheExecutor) {
  ProcessPoolExecutor executor(2, failing_initializer);
  Future<int> f = executor.submit(square, 2);
  expect_throw_containing<mproc::BrokenProcessPool>([&] { f.result(10s); }, "cannot connect");
  EXPECT_THROW(executor.submit(square, 2), mproc::BrokenProcessPool);
}

TEST(ExecutorWorkerLost, OnlyTheFutureItRanFailsAndTheExecutorGoesOn) {
  shared()[0] = 0;
  ProcessPoolExecutor executor(2);
  Future<int> lost = executor.submit(announce_then_sleep, 60'000);
  ASSERT_TRUE(mproc::testing::reaches(shared()[0], 1));
  std::vector<int> pids = executor.worker_pids();
  for (int pid : pids) ::kill(pid, SIGKILL);
  try {
    lost.result(10s);
    ADD_FAILURE() << "nothing thrown";
  } catch (const mproc::BrokenProcessPool& e) {  // CPython code catches this
    EXPECT_NE(dynamic_cast<const mproc::WorkerLostError*>(&e), nullptr);
  }
  std::vector<Future<int>> more;
  for (int i = 0; i < 10; ++i) more.push_back(executor.submit(square, i));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(more[static_cast<std::size_t>(i)].result(), i * i);
}

int own_pid() { return static_cast<int>(::getpid()); }

TEST(ExecutorMaxTasksPerChild, ReplacesWorkersAfterThatManyCalls) {
  ProcessPoolExecutor executor(1, nullptr, {}, 2);
  std::set<int> pids;
  for (int i = 0; i < 6; ++i) pids.insert(executor.submit(own_pid).result());
  EXPECT_EQ(pids.size(), 3u);
}

}  // namespace
