// Pool: Python's semantics (apply, map, imap, callbacks, close/join,
// terminate), functions and exceptions across the boundary, lazy input, and
// supervision with real SIGKILLs: a lost worker fails only its task, is
// replaced, and nothing hangs or runs twice.

#include "mproc/pool.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <random>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/process.hpp"
#include "support/child.hpp"
#include "support/expect.hpp"
#include "support/helpers.hpp"
#include "support/shared_words.hpp"

namespace {

using mproc::AsyncResult;
using mproc::Pool;
using mproc::testing::ends_within;
using mproc::testing::expect_throw_containing;
using mproc::testing::SharedWords;
using namespace std::chrono_literals;

int square(int x) { return x * x; }
int own_pid(int) { return static_cast<int>(::getpid()); }
std::string worker_name(int) { return mproc::current_process().name(); }
std::string greet(const std::string& name, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += "hi " + name + ";";
  return out;
}
int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
int fail_on_three(int x) {
  if (x == 3) throw std::invalid_argument("three is not allowed");
  return x;
}
struct UnregisteredError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
int throw_unregistered(int) { throw UnregisteredError("nobody knows me"); }
void do_nothing() {}

// Memory shared with the workers (forked after these are made).
SharedWords& shared() {
  static SharedWords* words = new SharedWords(16);
  return *words;
}
int record_start_then_sleep(int ms) {
  shared()[0].fetch_add(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

TEST(PoolApply, RunsTheCallInAWorkerProcess) {
  Pool pool(2);
  EXPECT_EQ(pool.apply(square, 12), 144);
  EXPECT_NE(pool.apply(own_pid, 0), ::getpid());
  EXPECT_EQ(pool.apply(greet, std::string("ann"), 2), "hi ann;hi ann;");
  EXPECT_EQ(pool.apply([](int a, int b) { return a - b; }, 10, 3), 7);  // a capture-less lambda
  EXPECT_EQ(pool.apply(mproc::partial(greet, std::string("bo")), 1), "hi bo;");
  pool.apply(do_nothing);  // void
}

TEST(PoolWorkers, AreNamedAsPythonNamesThem) {
  Pool pool(2);
  std::string name = pool.apply(worker_name, 0);
  EXPECT_EQ(name.rfind("ForkPoolWorker-", 0), 0u) << name;
  EXPECT_EQ(pool.processes(), 2);
  EXPECT_EQ(pool.worker_pids().size(), 2u);
}

TEST(PoolConstruction, RefusesFewerThanOneProcess) {
  EXPECT_THROW(Pool(0), std::invalid_argument);
  Pool pool;  // cpu_count() workers
  EXPECT_EQ(pool.processes(), mproc::cpu_count());
}

TEST(AsyncResultGet, TimesOutWithTimeoutErrorAndTheTaskGoesOn) {
  Pool pool(1);
  AsyncResult<int> r = pool.apply_async(sleep_ms, 400);
  auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(r.get(50ms), mproc::TimeoutError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 350ms);
  EXPECT_FALSE(r.ready());
  EXPECT_THROW((void)r.successful(), mproc::UsageError);  // not ready yet
  EXPECT_FALSE(r.wait(10ms));
  EXPECT_EQ(r.get(5s), 400);
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.successful());
  EXPECT_EQ(r.get(), 400);  // again
}

TEST(AsyncResultCallbacks, RunOnceInThisProcessOnAResultThreadBeforeTheResultIsReady) {
  Pool pool(2);
  std::atomic<int> calls{0};
  std::atomic<int> seen{0};
  std::thread::id callback_thread;
  auto r = pool.apply_async(
      square, std::tuple<int>(9),
      [&](const int& value) {
        seen = value;
        callback_thread = std::this_thread::get_id();
        ++calls;
      },
      [&](std::exception_ptr) { calls += 100; });
  EXPECT_EQ(r.get(), 81);
  EXPECT_EQ(calls.load(), 1);  // before get() returned
  EXPECT_EQ(seen.load(), 81);
  EXPECT_NE(callback_thread, std::this_thread::get_id());
}

TEST(AsyncResultCallbacks, ErrorCallbackGetsTheExceptionAndCallbackDoesNotRun) {
  Pool pool(1);
  std::atomic<int> callbacks{0};
  std::string message;
  auto r = pool.apply_async(
      fail_on_three, std::tuple<int>(3), [&](const int&) { callbacks += 100; },
      [&](std::exception_ptr error) {
        try {
          std::rethrow_exception(error);
        } catch (const std::invalid_argument& e) {
          message = e.what();
        }
        ++callbacks;
      });
  r.wait();
  EXPECT_EQ(callbacks.load(), 1);
  EXPECT_EQ(message, "three is not allowed");
  EXPECT_FALSE(r.successful());
  EXPECT_THROW(r.get(), std::invalid_argument);
}

TEST(PoolExceptions, StandardTypesComeBackAsThemselvesOthersAsRemoteError) {
  Pool pool(1);
  EXPECT_THROW(pool.apply(fail_on_three, 3), std::invalid_argument);
  try {
    pool.apply(throw_unregistered, 0);
    ADD_FAILURE() << "nothing thrown";
  } catch (const mproc::RemoteError& e) {
    EXPECT_NE(e.type().find("UnregisteredError"), std::string::npos) << e.type();
    EXPECT_EQ(e.message(), "nobody knows me");
    EXPECT_EQ(e.process().rfind("ForkPoolWorker-", 0), 0u) << e.process();
  }
  EXPECT_EQ(pool.apply(square, 2), 4);  // the worker carries on
}

TEST(PoolMap, ReturnsTheResultsInOrder) {
  Pool pool(3);
  std::vector<int> input(1000);
  for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<int>(i);
  std::vector<int> squares = pool.map(square, input);
  ASSERT_EQ(squares.size(), 1000u);
  for (std::size_t i = 0; i < squares.size(); ++i) EXPECT_EQ(squares[i], static_cast<int>(i * i));
  EXPECT_EQ(pool.map(square, {1, 2, 3}), (std::vector<int>{1, 4, 9}));
  EXPECT_EQ(pool.map(square, std::views::iota(0, 5), 2), (std::vector<int>{0, 1, 4, 9, 16}));
}

TEST(PoolMap, OfNothingIsEmptyAndStillCallsBack) {
  Pool pool(1);
  EXPECT_TRUE(pool.map(square, std::vector<int>{}).empty());
  std::atomic<int> calls{0};
  auto r = pool.map_async(square, std::vector<int>{}, 0, [&](const std::vector<int>& v) { calls += 1 + static_cast<int>(v.size()); });
  EXPECT_TRUE(r.get().empty());
  EXPECT_EQ(calls.load(), 1);
}

TEST(PoolMap, ThrowsTheExceptionOfAFailingItem) {
  Pool pool(2);
  expect_throw_containing<std::invalid_argument>([&] { pool.map(fail_on_three, std::views::iota(0, 10), 2); },
                                                 "three");
  EXPECT_EQ(pool.map(square, {4}), std::vector<int>{16});
}

TEST(PoolMapAsync, CallbackGetsTheWholeList) {
  Pool pool(2);
  std::vector<int> got;
  auto r = pool.map_async(square, std::vector<int>{1, 2, 3, 4}, 1, [&](const std::vector<int>& all) { got = all; });
  EXPECT_EQ(r.get(), (std::vector<int>{1, 4, 9, 16}));
  EXPECT_EQ(got, (std::vector<int>{1, 4, 9, 16}));
}

// With one task per worker, the pids of the results show how items were
// grouped into tasks.
TEST(PoolMap, EachChunkIsOneTaskAndMaxtasksperchildReplacesWorkers) {
  Pool pool(2, nullptr, {}, 1);
  std::vector<int> pids = pool.map(own_pid, std::views::iota(0, 9), 3);
  ASSERT_EQ(pids.size(), 9u);
  std::set<int> distinct;
  for (std::size_t chunk = 0; chunk < 3; ++chunk) {
    EXPECT_EQ(pids[chunk * 3], pids[chunk * 3 + 1]);
    EXPECT_EQ(pids[chunk * 3], pids[chunk * 3 + 2]);
    distinct.insert(pids[chunk * 3]);
  }
  EXPECT_EQ(distinct.size(), 3u);  // each worker ran one task, then was replaced
}

TEST(PoolStarmap, UnpacksEachItemIntoArguments) {
  Pool pool(2);
  std::vector<std::tuple<std::string, int>> items{{"a", 1}, {"b", 2}};
  EXPECT_EQ(pool.starmap(greet, items), (std::vector<std::string>{"hi a;", "hi b;hi b;"}));
  auto r = pool.starmap_async([](int a, int b) { return a * b; }, std::vector<std::pair<int, int>>{{2, 3}, {4, 5}});
  EXPECT_EQ(r.get(), (std::vector<int>{6, 20}));
}

TEST(PoolImap, YieldsInOrderRaisesAtTheFailingItemAndGoesOn) {
  Pool pool(2);
  for (std::size_t chunksize : {std::size_t{1}, std::size_t{4}}) {
    auto results = pool.imap(fail_on_three, std::views::iota(0, 8), chunksize);
    std::vector<int> got;
    int errors = 0;
    for (auto it = results.begin(); it != results.end(); ++it) {
      try {
        got.push_back(*it);
      } catch (const std::invalid_argument&) {
        ++errors;
        EXPECT_EQ(got.size(), 3u);  // after the results before it
      }
    }
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 4, 5, 6, 7})) << "chunksize " << chunksize;
    EXPECT_EQ(errors, 1);
  }
}

TEST(PoolImap, NextTakesEachResultOnceAndEndsEmpty) {
  Pool pool(1);
  auto results = pool.imap(sleep_ms, std::vector<int>{300, 0});
  EXPECT_THROW(results.next(20ms), mproc::TimeoutError);
  EXPECT_EQ(results.next(5s), 300);
  EXPECT_EQ(results.next(), 0);
  EXPECT_EQ(results.next(), std::nullopt);
}

TEST(PoolImapUnordered, YieldsEveryResultOnceFastestFirst) {
  Pool pool(2);
  std::vector<int> got;
  for (int ms : pool.imap_unordered(sleep_ms, std::vector<int>{600, 10, 20, 30})) got.push_back(ms);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got.back(), 600);
  EXPECT_EQ(std::set<int>(got.begin(), got.end()), (std::set<int>{10, 20, 30, 600}));
}

long resident_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// An endless input, counting what is read from it.
struct CountingInput {
  std::atomic<long>* read;
  auto view() const {
    return std::views::iota(0L) | std::views::transform([r = read](long i) {
             r->fetch_add(1);
             return static_cast<int>(i % 1000);
           });
  }
};

TEST(PoolImap, ReadsAnEndlessInputLazilyWithFlatMemory) {
  Pool pool(2);
  std::atomic<long> read{0};
  auto results = pool.imap(square, CountingInput{&read}.view(), 50);
  long consumed = 0;
  long sum = 0;
  long rss_at_100k = 0;
  for (auto it = results.begin(); it != results.end() && consumed < 1'000'000; ++it) {
    sum += *it;
    ++consumed;
    if (consumed == 100'000) rss_at_100k = resident_kib();
    if (consumed % 100'000 == 0) {
      EXPECT_LE(read.load(), consumed + 50 * 64) << "read far ahead of what was consumed";
    }
  }
  EXPECT_EQ(consumed, 1'000'000);
  EXPECT_EQ(sum, 1000L * (999L * 1000L * 1999L / 6));
#if !defined(__SANITIZE_ADDRESS__)  // ASan keeps freed memory in quarantine: resident memory grows
  EXPECT_LT(resident_kib() - rss_at_100k, 16 * 1024) << "memory grew while iterating";
#endif
}

TEST(PoolImap, StartedBeforeCloseYieldsEverythingAfterJoin) {
  Pool pool(2);
  auto results = pool.imap(square, std::views::iota(0, 5000));
  pool.close();
  pool.join();  // reads the rest of the input, as CPython's imap had read it all
  long count = 0;
  for (int value : results) {
    EXPECT_EQ(value, static_cast<int>(count * count));
    ++count;
  }
  EXPECT_EQ(count, 5000);
}

int throw_timeout(int x) {
  if (x == 1) throw mproc::TimeoutError("a task's own timeout");
  return x;
}

TEST(PoolImap, NextGoesPastATaskThatThrewTimeoutError) {
  Pool pool(1);
  auto results = pool.imap(throw_timeout, std::vector<int>{0, 1, 2});
  EXPECT_EQ(results.next(), 0);
  EXPECT_THROW(results.next(), mproc::TimeoutError);
  EXPECT_EQ(results.next(), 2);
  EXPECT_EQ(results.next(), std::nullopt);
}

TEST(PoolJoin, FromAResultCallbackIsAUsageErrorNotADeadlock) {
  Pool pool(1);
  std::atomic<int> refused{0};
  auto r = pool.apply_async(square, std::tuple<int>(2), [&](const int&) {
    pool.close();
    try {
      pool.join();
    } catch (const mproc::UsageError&) {
      ++refused;
    }
  });
  EXPECT_EQ(r.get(), 4);
  EXPECT_EQ(refused.load(), 1);
}

TEST(PoolDestructor, RunInItsOwnCallbackTearsThePoolDownAfterwards) {
  auto holder = std::make_shared<std::unique_ptr<Pool>>(std::make_unique<Pool>(2));
  std::vector<int> pids = (*holder)->worker_pids();
  auto r = (*holder)->apply_async(square, std::tuple<int>(3), [holder](const int&) { holder->reset(); });
  EXPECT_EQ(r.get(), 9);
  holder.reset();
  for (int pid : pids) EXPECT_TRUE(ends_within(pid, 5s)) << pid;
}

TEST(PoolClose, RefusesNewTasksAndJoinWaitsForTheSubmittedOnes) {
  Pool pool(2);
  auto slow = pool.apply_async(sleep_ms, 200);
  EXPECT_THROW(pool.join(), mproc::UsageError);  // still running
  pool.close();
  EXPECT_THROW(pool.apply_async(square, 1), mproc::UsageError);
  pool.join();
  EXPECT_TRUE(slow.ready());
  EXPECT_EQ(slow.get(), 200);
  EXPECT_TRUE(mproc::active_children().empty());
}

TEST(PoolTerminate, FailsUnfinishedTasksAndTheDestructorDoesItToo) {
  std::vector<int> pids;
  AsyncResult<int> running(nullptr);
  {
    Pool pool(2);
    pids = pool.worker_pids();
    running = pool.apply_async(sleep_ms, 30'000);
  }  // Python's `with` exit: terminate
  auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(running.get(5s), mproc::BrokenProcessPool);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  for (int pid : pids) EXPECT_TRUE(ends_within(pid, 5s)) << pid;
}

int g_initialized = 0;
void initialize(int value) { g_initialized = value; }
int read_initialized(int) { return g_initialized; }
void failing_initializer() { throw std::runtime_error("no database"); }

TEST(PoolInitializer, RunsInEachWorkerBeforeItsTasks) {
  g_initialized = 0;
  Pool pool(2, initialize, std::make_tuple(42));
  EXPECT_EQ(pool.map(read_initialized, std::views::iota(0, 10), 1), std::vector<int>(10, 42));
}

TEST(PoolInitializer, ThatThrowsBreaksThePoolInsteadOfRespawningForever) {
  Pool pool(2, failing_initializer);
  expect_throw_containing<mproc::BrokenProcessPool>([&] { pool.apply(square, 1); }, "no database");
  EXPECT_THROW(pool.apply_async(square, 1), mproc::BrokenProcessPool);
}

// Supervision.

TEST(PoolSupervision, AWorkerKilledMidTaskFailsThatTaskAndIsReplaced) {
  shared()[0] = 0;
  Pool pool(2);
  auto doomed = pool.apply_async(own_pid, 0);
  int victim = doomed.get();
  auto lost = pool.apply_async(record_start_then_sleep, 60'000);
  ASSERT_TRUE(mproc::testing::reaches(shared()[0], 1));
  std::vector<int> before = pool.worker_pids();
  // The sleeping task runs on one of the two workers: kill both; the idle
  // one takes no task with it.
  for (int pid : before) ::kill(pid, SIGKILL);
  try {
    lost.get(10s);
    ADD_FAILURE() << "nothing thrown";
  } catch (const mproc::WorkerLostError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("SIGKILL"), std::string::npos) << what;
    EXPECT_NE(what.find("pid "), std::string::npos) << what;
  }
  (void)victim;
  EXPECT_EQ(pool.map(square, std::views::iota(0, 20), 1).size(), 20u);  // replaced: the pool serves
  std::vector<int> after = pool.worker_pids();
  EXPECT_EQ(after.size(), 2u);
  for (int pid : after) EXPECT_TRUE(std::find(before.begin(), before.end(), pid) == before.end());
}

int exit_with(int code) { mproc::exit(code); }

TEST(PoolSupervision, ExitInATaskEndsItsWorkerAndFailsOnlyThatTask) {
  Pool pool(1);
  expect_throw_containing<mproc::WorkerLostError>([&] { pool.apply(exit_with, 3); }, "exited with code 3");
  EXPECT_EQ(pool.apply(square, 5), 25);
}

// Counts each execution of an item in shared memory, then spins a little.
SharedWords& executions() {
  static SharedWords* words = new SharedWords(100'000);
  return *words;
}
int count_and_spin(int item) {
  executions()[static_cast<std::size_t>(item)].fetch_add(1);
  auto until = std::chrono::steady_clock::now() + 20us;
  while (std::chrono::steady_clock::now() < until) {
  }
  return item * 2;
}

TEST(PoolSupervision, TwoHundredRandomKillsDuringAMapLoseAndRepeatNothing) {
  constexpr int kItems = 100'000;
  for (std::size_t i = 0; i < kItems; ++i) executions()[i] = 0;
  Pool pool(2);
  std::atomic<bool> done{false};
  std::atomic<int> kills{0};
  std::thread killer([&] {
    std::mt19937 random(12345);
    while (!done && kills < 200) {
      std::vector<int> pids = pool.worker_pids();
      if (!pids.empty()) {
        ::kill(pids[random() % pids.size()], SIGKILL);
        ++kills;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(1000 + random() % 3000));
    }
  });
  int values = 0;
  int lost = 0;
  int index = 0;
  auto results = pool.imap(count_and_spin, std::views::iota(0, kItems), 10);
  for (auto it = results.begin(); it != results.end(); ++it, ++index) {
    try {
      EXPECT_EQ(*it, index * 2);
      ++values;
    } catch (const mproc::WorkerLostError&) {
      ++lost;
    }
  }
  done = true;
  killer.join();
  EXPECT_EQ(values + lost, kItems);
  EXPECT_GE(kills.load(), 150) << "the map ended before enough kills";
  EXPECT_GT(lost, 0);
  int wrong = 0;
  for (std::size_t i = 0; i < kItems; ++i) {
    long runs = executions()[i].load();
    if (runs > 1) ++wrong;  // ran twice
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(pool.apply(square, 3), 9);
}

// Starts a pool, reports its workers' pids, and waits to be killed.
MPROC_TEST_HELPER(pool_then_wait) {
  mproc::Connection out = mproc::Connection::from_socket(mproc::UniqueFd(std::atoi(args.at(0).c_str())));
  Pool pool(2);
  out.send(pool.worker_pids());
  for (;;) ::pause();
}

TEST(PoolSupervision, WorkersDieWithAKilledParent) {
  auto [mine, theirs] = mproc::Pipe();
  auto helper =
      mproc::testing::ChildProcess::spawn_helper("pool_then_wait", {std::to_string(theirs.fileno())}, {theirs.fileno()});
  theirs.close();
  auto pids = mine.recv<std::vector<int>>();
  ASSERT_EQ(pids.size(), 2u);
  ::kill(helper.pid(), SIGKILL);
  EXPECT_EQ(helper.wait(), -SIGKILL);
  for (int pid : pids) EXPECT_TRUE(ends_within(pid, 1s)) << "worker " << pid << " outlived its parent";
}

// In its own process group, with stderr to the given descriptor: a long
// map, interrupted by the test with SIGINT to the group.
MPROC_TEST_HELPER(pool_map_until_interrupted) {
  ::setpgid(0, 0);
  ::dup2(std::atoi(args.at(1).c_str()), 2);
  mproc::Connection out = mproc::Connection::from_socket(mproc::UniqueFd(std::atoi(args.at(0).c_str())));
  Pool pool(2);
  out.send(pool.worker_pids());
  pool.map(sleep_ms, std::vector<int>(1000, 100), 1);
  return 0;
}

TEST(PoolSupervision, CtrlCEndsTheProgramAndItsWorkersQuietly) {
  auto [mine, theirs] = mproc::Pipe();
  int err[2];
  ASSERT_EQ(::pipe(err), 0);
  auto helper = mproc::testing::ChildProcess::spawn_helper(
      "pool_map_until_interrupted", {std::to_string(theirs.fileno()), std::to_string(err[1])},
      {theirs.fileno(), err[1]});
  theirs.close();
  ::close(err[1]);
  auto pids = mine.recv<std::vector<int>>();
  std::this_thread::sleep_for(300ms);  // well into the map
  ASSERT_EQ(::kill(-helper.pid(), SIGINT), 0);
  EXPECT_EQ(helper.wait(), -SIGINT);
  for (int pid : pids) EXPECT_TRUE(ends_within(pid, 1s)) << "worker " << pid << " still runs";
  std::string errors;
  char buffer[4096];
  for (ssize_t n; (n = ::read(err[0], buffer, sizeof(buffer))) > 0;) errors.append(buffer, static_cast<std::size_t>(n));
  ::close(err[0]);
  EXPECT_EQ(errors, "");
}

}  // namespace
