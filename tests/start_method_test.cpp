// The shared suite: Process, Pipe, synchronization, queue and Pool tests
// written once and run under each start method (as CPython's _test_multiprocessing
// runs one suite per method). Targets are plain functions and everything
// the child needs travels as an argument, so that nothing depends on fork's
// copy of memory. Method-specific behaviour (spawn's fresh run, the fork
// server, the global choice of method) is tested after it.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mproc/mproc.hpp"
#include "runtime/start.hpp"
#include "support/child.hpp"
#include "support/expect.hpp"
#include "support/helpers.hpp"

namespace {

using namespace std::chrono_literals;
using mproc::StartMethod;
using mproc::testing::expect_throw_containing;

struct Report {
  std::string name;
  int pid = 0;
  int parent_pid = 0;
  std::string parent_name;
  int argument = 0;
};

void report_self(mproc::Queue<Report> out, int argument) {
  auto parent = mproc::parent_process();
  out.put(Report{mproc::current_process().name(), *mproc::current_process().pid(), parent ? *parent->pid() : 0,
                 parent ? parent->name() : "", argument});
}

void exit_with(int code) { mproc::exit(code); }
void throw_invalid_argument() { throw std::invalid_argument("bad input"); }
void kill_self() { std::raise(SIGKILL); }
void sleep_long() { std::this_thread::sleep_for(60s); }

void echo_until_zero(mproc::Connection connection) {
  for (int value; (value = connection.recv<int>()) != 0;) connection.send(value * 2);
}

void report_environment(mproc::Queue<std::string> out) {
  const char* value = std::getenv("MPROC_START_METHOD_TEST");
  out.put(value != nullptr ? value : "(unset)");
  out.put(std::filesystem::current_path().string());
}

void try_lock(mproc::Lock lock, mproc::Queue<int> out) { out.put(lock.acquire(false) ? 1 : 0); }

void set_event_after_wait(mproc::Event go, mproc::Event done) {
  if (go.wait(10s)) done.set();
}

void notify_under_condition(mproc::Condition condition, mproc::Value<int> flag) {
  std::lock_guard guard(condition);
  flag.set_value(1);
  condition.notify_all();
}

void release_semaphore(mproc::Semaphore semaphore, int times) {
  for (int i = 0; i < times; ++i) semaphore.release();
}

void wait_at_barrier(mproc::Barrier barrier, mproc::Queue<int> out) { out.put(barrier.wait()); }

void increment_under_lock(mproc::Value<long> counter, int times) {
  for (int i = 0; i < times; ++i) {
    std::lock_guard guard(counter);
    counter.set_value(counter.value() + 1);
  }
}

void fill_array(mproc::Array<int> array) {
  std::lock_guard guard(array);
  for (std::size_t i = 0; i < array.size(); ++i) array[i] = static_cast<int>(i * i);
}

void write_shared_memory(mproc::SharedMemory memory) {
  for (std::size_t i = 0; i < memory.buf().size(); ++i) memory.buf()[i] = std::byte{42};
}

void produce(mproc::Queue<int> out, int count) {
  for (int i = 0; i < count; ++i) out.put(i);
}

void consume_and_mark_done(mproc::JoinableQueue<int> in, mproc::Value<long> sum) {
  for (;;) {
    int item = in.get();
    if (item >= 0) {
      std::lock_guard guard(sum);
      sum.set_value(sum.value() + item);
    }
    in.task_done();
    if (item < 0) return;
  }
}

int square(int x) { return x * x; }
std::string own_name(int) { return mproc::current_process().name(); }
int fail_on_three(int x) {
  if (x == 3) throw std::invalid_argument("three is refused");
  return x;
}

int worker_tag = 0;
void set_worker_tag(int tag) { worker_tag = tag; }
int read_worker_tag(int) { return worker_tag; }

// Handles reach a pool's workers through the initializer, as in Python.
std::optional<mproc::Value<int>> started_pid;
void remember_started_pid(mproc::Value<int> value) { started_pid = value; }
void record_then_sleep(int) {
  started_pid->set_value(*mproc::current_process().pid());
  std::this_thread::sleep_for(60s);
}

std::string prefix_of(StartMethod method) { return std::string(mproc::detail::start_method_prefix(method)); }

class AnyStartMethod : public ::testing::TestWithParam<StartMethod> {
 protected:
  mproc::Context context() const { return mproc::Context(GetParam()); }
  bool is_fork() const { return GetParam() == StartMethod::fork; }
};

INSTANTIATE_TEST_SUITE_P(Methods, AnyStartMethod,
                         ::testing::Values(StartMethod::fork, StartMethod::spawn, StartMethod::forkserver),
                         [](const auto& param_info) { return std::string(mproc::start_method_name(param_info.param)); });

// Process.

TEST_P(AnyStartMethod, Process_RunsTargetWithItsArgumentsAsAChildOfThisProcess) {
  mproc::Queue<Report> out;
  mproc::Process p = context().Process(report_self, out, 17);
  EXPECT_EQ(p.start_method(), GetParam());
  p.start();
  Report report = out.get(10s);
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(report.name, p.name());
  EXPECT_EQ(report.name.rfind(prefix_of(GetParam()) + "Process-", 0), 0u) << report.name;
  EXPECT_EQ(report.pid, *p.pid());
  EXPECT_EQ(report.parent_pid, ::getpid());
  EXPECT_EQ(report.parent_name, "MainProcess");
  EXPECT_EQ(report.argument, 17);
}

TEST_P(AnyStartMethod, Process_ExitCodesFollowPython) {
  auto ctx = context();
  mproc::Process exits = ctx.Process(exit_with, 3);
  mproc::Process throws = ctx.Process(throw_invalid_argument);
  mproc::Process killed = ctx.Process(kill_self);
  mproc::Process terminated = ctx.Process(sleep_long);
  for (auto* p : {&exits, &throws, &killed, &terminated}) p->start();
  terminated.terminate();
  for (auto* p : {&exits, &throws, &killed, &terminated}) ASSERT_TRUE(p->join(10s));
  EXPECT_EQ(exits.exitcode(), 3);
  EXPECT_EQ(throws.exitcode(), 1);
  EXPECT_EQ(killed.exitcode(), -SIGKILL);
  EXPECT_EQ(terminated.exitcode(), -SIGTERM);
}

TEST_P(AnyStartMethod, Process_ChildSeesEnvironmentAndWorkingDirectory) {
  ::setenv("MPROC_START_METHOD_TEST", "inherited", 1);
  mproc::Queue<std::string> out;
  mproc::Process p = context().Process(report_environment, out);
  p.start();
  EXPECT_EQ(out.get(10s), "inherited");
  EXPECT_EQ(out.get(10s), std::filesystem::current_path().string());
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  ::unsetenv("MPROC_START_METHOD_TEST");
}

void start_daemon_and_report(mproc::StartMethod method, mproc::Queue<int> out) {
  mproc::Process p = mproc::Context(method).Process(mproc::ProcessOptions{"sleeper", true}, sleep_long);
  p.start();
  out.put(*p.pid());
  sleep_long();
}

TEST_P(AnyStartMethod, Process_DaemonicChildDiesWhenItsParentIsKilled) {
  mproc::Queue<int> daemon_pid;
  mproc::Process parent = context().Process(start_daemon_and_report, GetParam(), daemon_pid);
  parent.start();
  int daemon = daemon_pid.get(20s);
  ASSERT_TRUE(mproc::testing::process_exists(daemon));
  parent.kill();
  parent.join();
  EXPECT_TRUE(mproc::testing::ends_within(daemon, 2000ms));
}

// Pipe.

TEST_P(AnyStartMethod, Pipe_EndTravelsToTheChildAndCarriesMessagesBothWays) {
  auto [mine, theirs] = mproc::Pipe();
  mproc::Process p = context().Process(echo_until_zero, theirs);
  p.start();
  theirs.close();
  for (int value : {1, 2, 21}) {
    mine.send(value);
    EXPECT_EQ(mine.recv<int>(), value * 2);
  }
  mine.send(0);
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

// Synchronization.

TEST_P(AnyStartMethod, Lock_HeldByParentIsHeldInTheChild) {
  mproc::Lock lock;
  mproc::Queue<int> out;
  lock.acquire();
  mproc::Process p = context().Process(try_lock, lock, out);
  p.start();
  EXPECT_EQ(out.get(10s), 0);
  p.join();
  lock.release();
}

TEST_P(AnyStartMethod, Event_SetInTheChildWakesTheParent) {
  mproc::Event go, done;
  mproc::Process p = context().Process(set_event_after_wait, go, done);
  p.start();
  EXPECT_FALSE(done.wait(50ms));
  go.set();
  EXPECT_TRUE(done.wait(10s));
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST_P(AnyStartMethod, Condition_NotifiedByTheChildWakesTheParent) {
  mproc::Condition condition;
  mproc::Value<int> flag(0);
  std::unique_lock guard(condition);
  mproc::Process p = context().Process(notify_under_condition, condition, flag);
  p.start();
  EXPECT_TRUE(condition.wait_for([&] { return flag.value() == 1; }, 10s));
  guard.unlock();
  p.join();
}

TEST_P(AnyStartMethod, Semaphore_ReleasedByTheChildIsAcquiredHere) {
  mproc::Semaphore semaphore(0);
  mproc::Process p = context().Process(release_semaphore, semaphore, 3);
  p.start();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(semaphore.acquire(true, 10s));
  p.join();
  EXPECT_FALSE(semaphore.acquire(false));
}

TEST_P(AnyStartMethod, Barrier_TwoChildrenAndTheParentPassTogether) {
  mproc::Barrier barrier(3);
  mproc::Queue<int> out;
  auto ctx = context();
  mproc::Process a = ctx.Process(wait_at_barrier, barrier, out);
  mproc::Process b = ctx.Process(wait_at_barrier, barrier, out);
  a.start();
  b.start();
  int mine = barrier.wait();
  std::vector<int> indices{mine, out.get(10s), out.get(10s)};
  std::sort(indices.begin(), indices.end());
  EXPECT_EQ(indices, (std::vector<int>{0, 1, 2}));
  a.join();
  b.join();
}

TEST_P(AnyStartMethod, Value_IncrementedUnderItsLockByTwoChildrenLosesNothing) {
  mproc::Value<long> counter(0);
  auto ctx = context();
  mproc::Process a = ctx.Process(increment_under_lock, counter, 5000);
  mproc::Process b = ctx.Process(increment_under_lock, counter, 5000);
  a.start();
  b.start();
  a.join();
  b.join();
  EXPECT_EQ(counter.value(), 10000);
}

TEST_P(AnyStartMethod, Array_WrittenByTheChildIsReadHere) {
  mproc::Array<int> array(8);
  mproc::Process p = context().Process(fill_array, array);
  p.start();
  p.join();
  for (std::size_t i = 0; i < array.size(); ++i) EXPECT_EQ(array[i], static_cast<int>(i * i));
}

TEST_P(AnyStartMethod, SharedMemory_WrittenByTheChildIsReadHere) {
  mproc::SharedMemory memory = mproc::SharedMemory::create(4096);
  mproc::Process p = context().Process(write_shared_memory, memory);
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(memory.buf()[0], std::byte{42});
  EXPECT_EQ(memory.buf()[4095], std::byte{42});
  memory.close();
  memory.unlink();
}

// Queues.

TEST_P(AnyStartMethod, Queue_ItemsFromTheChildArriveInOrder) {
  mproc::Queue<int> out(16);  // bounded: the child waits for room
  mproc::Process p = context().Process(produce, out, 1000);
  p.start();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(out.get(10s), i);
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST_P(AnyStartMethod, JoinableQueue_JoinReturnsOnceTheChildHasDoneEveryItem) {
  mproc::JoinableQueue<int> work;
  mproc::Value<long> sum(0);
  mproc::Process p = context().Process(consume_and_mark_done, work, sum);
  p.start();
  for (int i = 1; i <= 100; ++i) work.put(i);
  work.put(-1);
  work.join();
  EXPECT_EQ(sum.value(), 5050);
  p.join();
}

// Pool and executor.

TEST_P(AnyStartMethod, Pool_MapsAndNamesItsWorkersAfterTheMethod) {
  auto pool = context().Pool(2);
  EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3, 4}), (std::vector<int>{1, 4, 9, 16}));
  std::string name = pool.apply(own_name, 0);
  EXPECT_EQ(name.rfind(prefix_of(GetParam()) + "PoolWorker-", 0), 0u) << name;
}

TEST_P(AnyStartMethod, Pool_TaskExceptionComesBackAsItsType) {
  auto pool = context().Pool(2);
  expect_throw_containing<std::invalid_argument>([&] { pool.apply(fail_on_three, 3); }, "three is refused");
  EXPECT_EQ(pool.apply(fail_on_three, 4), 4);
}

TEST_P(AnyStartMethod, Pool_InitializerRunsInEachWorker) {
  auto pool = context().Pool(2, set_worker_tag, std::tuple{7});
  for (int tag : pool.map(read_worker_tag, std::vector<int>(20, 0), 1)) EXPECT_EQ(tag, 7);
}

TEST_P(AnyStartMethod, Pool_AWorkerKilledMidTaskFailsThatTaskAndIsReplaced) {
  mproc::Value<int> started(0);
  auto pool = context().Pool(2, remember_started_pid, std::tuple{started});
  auto lost = pool.apply_async(record_then_sleep, 0);
  for (int i = 0; i < 10000 && started.value() == 0; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_NE(started.value(), 0);
  ::kill(started.value(), SIGKILL);
  expect_throw_containing<mproc::WorkerLostError>([&] { lost.get(10s); }, "SIGKILL");
  EXPECT_EQ(pool.map(square, std::vector<int>{5, 6}), (std::vector<int>{25, 36}));  // replaced: the pool serves
}

TEST_P(AnyStartMethod, Executor_SubmitsUnderTheMethodAndNamesWorkersAsCPython) {
  mproc::ProcessPoolExecutor executor(2, context());
  EXPECT_EQ(executor.submit(square, 9).result(10s), 81);
  std::string name = executor.submit(own_name, 0).result(10s);
  EXPECT_EQ(name.rfind(prefix_of(GetParam()) + "Process-", 0), 0u) << name;
}

// What only spawn and forkserver do: the target travels.

struct NotSendable {
  int* pointer;
};

class SleepingSubclass : public mproc::Process {
 public:
  explicit SleepingSubclass(mproc::ProcessOptions options) : mproc::Process(std::move(options)) {}
  void run() override {}
};

TEST_P(AnyStartMethod, Process_CapturingLambdaIsNotTransferableAndStartsNothing) {
  if (is_fork()) GTEST_SKIP() << "fork copies the parent: any callable is a target";
  int captured = 3;
  mproc::Process p = context().Process([captured] { mproc::exit(captured); });
  expect_throw_containing<mproc::NotTransferableError>([&] { p.start(); }, "capturing lambda");
  EXPECT_FALSE(p.pid().has_value());
  EXPECT_TRUE(mproc::active_children().empty());
}

TEST_P(AnyStartMethod, Process_UnsendableArgumentIsNotTransferable) {
  if (is_fork()) GTEST_SKIP() << "fork copies the parent: any argument works";
  int value = 0;
  mproc::Process p = context().Process([](int* pointer) { *pointer = 1; }, &value);
  expect_throw_containing<mproc::NotTransferableError>([&] { p.start(); }, "an argument (int*)");
  EXPECT_TRUE(mproc::active_children().empty());
}

TEST_P(AnyStartMethod, Process_MoveOnlyArgumentIsMovedUnderForkAndRefusedOtherwise) {
  mproc::Queue<int> out;
  mproc::Process p = context().Process([](std::unique_ptr<int> value, mproc::Queue<int> to) { to.put(*value); },
                                       std::make_unique<int>(5), out);
  if (!is_fork()) {
    expect_throw_containing<mproc::NotTransferableError>([&] { p.start(); }, "an argument (std::unique_ptr<int");
    return;
  }
  p.start();
  EXPECT_EQ(out.get(10s), 5);
  p.join();
}

TEST_P(AnyStartMethod, Process_SubclassIsNotTransferable) {
  if (is_fork()) GTEST_SKIP() << "fork copies the subclass object";
  SleepingSubclass p(mproc::ProcessOptions{"", false, GetParam()});
  expect_throw_containing<mproc::NotTransferableError>([&] { p.start(); }, "subclass");
  EXPECT_TRUE(mproc::active_children().empty());
}

TEST_P(AnyStartMethod, Pool_TaskArgumentHoldingADescriptorIsRefusedWhenSubmitted) {
  auto pool = context().Pool(1);
  mproc::Value<int> value(0);
  expect_throw_containing<mproc::EncodeError>([&] { pool.apply_async(remember_started_pid, value); },
                                              "through the initializer");
  EXPECT_EQ(pool.apply(square, 3), 9);
}

TEST_P(AnyStartMethod, Pool_CapturingInitializerIsNotTransferable) {
  if (is_fork()) GTEST_SKIP() << "fork copies the initializer";
  int tag = 5;
  expect_throw_containing<mproc::NotTransferableError>(
      [&] { auto pool = context().Pool(2, [tag] { worker_tag = tag; }); }, "capturing lambda");
  EXPECT_TRUE(mproc::active_children().empty());
}

// The choice of method. Each test starts and ends with nothing chosen (in
// one process, they would otherwise see each other's choice).

class StartMethods : public ::testing::Test {
 protected:
  void SetUp() override { mproc::set_start_method("", true); }
  void TearDown() override { mproc::set_start_method("", true); }
};

TEST_F(StartMethods, DefaultIsForkAndAllThreeAreAvailable) {
  EXPECT_EQ(mproc::get_all_start_methods(), (std::vector<std::string>{"fork", "spawn", "forkserver"}));
  EXPECT_EQ(mproc::get_start_method(true), "");
  EXPECT_EQ(mproc::get_start_method(), "fork");
  EXPECT_EQ(mproc::get_context().get_start_method(), "fork");
}

TEST_F(StartMethods, SecondSetStartMethodWithoutForceIsUsageError) {
  mproc::set_start_method("spawn");
  EXPECT_EQ(mproc::get_start_method(), "spawn");
  expect_throw_containing<mproc::UsageError>([] { mproc::set_start_method("fork"); }, "context has already been set");
  EXPECT_EQ(mproc::get_start_method(), "spawn");
  mproc::set_start_method("forkserver", true);
  EXPECT_EQ(mproc::get_start_method(), "forkserver");
  mproc::set_start_method("", true);
  EXPECT_EQ(mproc::get_start_method(true), "");
}

TEST_F(StartMethods, StartingAProcessFixesTheDefault) {
  mproc::Queue<Report> out;
  mproc::Process p(report_self, out, 1);
  p.start();
  out.get(10s);
  p.join();
  EXPECT_EQ(p.name().rfind("Process-", 0), 0u);  // the default context's names carry no prefix
  expect_throw_containing<mproc::UsageError>([] { mproc::set_start_method("spawn"); }, "already been set");
}

TEST_F(StartMethods, DefaultSetToSpawnIsUsedByPlainProcessAndPool) {
  mproc::set_start_method("spawn");
  mproc::Queue<Report> out;
  mproc::Process p(report_self, out, 2);
  EXPECT_EQ(p.start_method(), StartMethod::spawn);
  p.start();
  EXPECT_EQ(out.get(10s).argument, 2);
  p.join();
  mproc::Pool pool(1);
  EXPECT_EQ(pool.apply(own_name, 0).rfind("SpawnPoolWorker-", 0), 0u);
}

TEST_F(StartMethods, UnknownNameIsInvalidArgument) {
  expect_throw_containing<std::invalid_argument>([] { mproc::get_context("vfork"); }, "cannot find context for 'vfork'");
  expect_throw_containing<std::invalid_argument>([] { mproc::set_start_method("thread"); }, "'thread'");
  EXPECT_EQ(mproc::get_start_method(true), "");  // nothing chosen by the failed call
}

TEST(Spawn, MissingExecutableIsAnExceptionInTheParent) {
  mproc::set_executable("/nonexistent/mproc-program");
  mproc::Process p = mproc::get_context("spawn").Process(exit_with, 0);
  try {
    p.start();
    ADD_FAILURE() << "nothing thrown";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/mproc-program"), std::string::npos) << e.what();
  }
  mproc::set_executable("");
  EXPECT_FALSE(p.pid().has_value());
  EXPECT_TRUE(mproc::active_children().empty());
  p = mproc::get_context("spawn").Process(exit_with, 4);  // the next start works
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 4);
}

// Run from a copy of the test binary, which it deletes before spawning.
MPROC_TEST_HELPER(spawn_after_deleting_own_binary) {
  std::filesystem::remove(std::filesystem::read_symlink("/proc/self/exe"));
  mproc::Process p = mproc::get_context("spawn").Process(exit_with, 7);
  p.start();
  p.join();
  return *p.exitcode();
}

TEST(Spawn, ProgramDeletedWhileRunningStillStartsChildren) {
  // /proc/self/exe names the file this process runs, deleted or not.
  auto copy = std::filesystem::temp_directory_path() / ("mproc_spawn_copy_" + std::to_string(::getpid()));
  std::filesystem::copy_file(std::filesystem::read_symlink("/proc/self/exe"), copy);
  auto child = mproc::testing::ChildProcess::spawn(copy.string(), {"--mproc-helper=spawn_after_deleting_own_binary"});
  int code = child.wait();
  bool left = std::filesystem::remove(copy);
  EXPECT_EQ(code, 7);
  EXPECT_FALSE(left);
}

TEST(Spawn, ChildRunsTheTargetBeforeMainAndNeverReachesIt) {
  // main() of this binary would run the whole test suite again: a child that
  // reached it would take far longer than this and exit with another code.
  mproc::Process p = mproc::get_context("spawn").Process(exit_with, 42);
  p.start();
  ASSERT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 42);
}

TEST(Forkserver, ServerKilledIsReplacedOnNextStart) {
  auto ctx = mproc::get_context("forkserver");
  mproc::Process first = ctx.Process(exit_with, 1);
  first.start();
  first.join();
  int server = mproc::detail::forkserver_pid_for_testing();
  ASSERT_GT(server, 0);
  ::kill(server, SIGKILL);
  ASSERT_TRUE(mproc::testing::ends_within(server, 5000ms));
  mproc::Process second = ctx.Process(exit_with, 2);
  second.start();
  second.join();
  EXPECT_EQ(second.exitcode(), 2);
  EXPECT_NE(mproc::detail::forkserver_pid_for_testing(), server);
}

TEST(Forkserver, ServerEndsWithItsParent) {
  // A forked child starts its own fork server, reports its pid and exits.
  mproc::Queue<int> server_pid;
  auto parent = mproc::testing::ChildProcess::fork([&] {
    mproc::Process p = mproc::get_context("forkserver").Process(exit_with, 0);
    p.start();
    p.join();
    server_pid.put(mproc::detail::forkserver_pid_for_testing());
    return 0;
  });
  int server = server_pid.get(20s);
  EXPECT_EQ(parent.wait(), 0);
  ASSERT_GT(server, 0);
  EXPECT_TRUE(mproc::testing::ends_within(server, 2000ms));
}

TEST(Forkserver, ChildOfAForkedProcessDoesNotUseItsParentsServer) {
  auto ctx = mproc::get_context("forkserver");
  mproc::Process mine = ctx.Process(exit_with, 0);
  mine.start();
  mine.join();
  int my_server = mproc::detail::forkserver_pid_for_testing();
  mproc::Queue<int> child_server;
  auto child = mproc::testing::ChildProcess::fork([&] {
    mproc::Process p = mproc::get_context("forkserver").Process(exit_with, 5);
    p.start();
    p.join();
    child_server.put(mproc::detail::forkserver_pid_for_testing());
    return *p.exitcode();
  });
  int theirs = child_server.get(20s);
  EXPECT_EQ(child.wait(), 5);
  EXPECT_NE(theirs, my_server);
  EXPECT_TRUE(mproc::testing::process_exists(my_server));
}

}  // namespace
