// Process with the fork start method: lifecycle, exit codes, names, the
// child exit path, daemons, reaping, finalizers. Children report what they
// did through pipes; every test checks exit codes.

#include "mproc/process.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/finalize.hpp"
#include "os/pidfd.hpp"
#include "os/poll.hpp"
#include "support/child.hpp"
#include "support/expect.hpp"
#include "support/helpers.hpp"

namespace {

using mproc::Process;
using mproc::ProcessOptions;
using mproc::testing::ends_within;
using mproc::testing::expect_throw_containing;
using mproc::testing::process_exists;
using namespace std::chrono_literals;

// Reads everything from `fd` until end of file.
std::string read_all(int fd) {
  std::string out;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof(buffer))) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    out.append(buffer, static_cast<std::size_t>(n));
  }
  return out;
}

// Points `target` (1 or 2) at a pipe while alive; output() reads what was written.
class CapturedFd {
 public:
  explicit CapturedFd(int target) : target_(target) {
    std::fflush(nullptr);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
    read_end_ = fds[0];
    saved_ = ::dup(target_);
    ::dup2(fds[1], target_);
    ::close(fds[1]);
  }
  ~CapturedFd() { restore(); }
  std::string output() {
    restore();
    std::string out = read_all(read_end_);
    ::close(read_end_);
    read_end_ = -1;
    return out;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(nullptr);
    ::dup2(saved_, target_);
    ::close(saved_);
    saved_ = -1;
  }
  int target_;
  int read_end_ = -1;
  int saved_ = -1;
};

TEST(ProcessStart, RunsTheTargetWithItsArgumentsInAChild) {
  auto [parent_end, child_end] = mproc::Pipe();
  std::string captured = "captured by copy";
  Process p(
      [captured, child_end = child_end](int n, const std::string& s) mutable {
        child_end.send(std::make_tuple(n, s, captured, ::getpid()));
      },
      7, std::string("argument"));
  p.start();
  auto [n, s, c, pid] = parent_end.recv<std::tuple<int, std::string, std::string, int>>();
  p.join();
  EXPECT_EQ(n, 7);
  EXPECT_EQ(s, "argument");
  EXPECT_EQ(c, "captured by copy");
  EXPECT_EQ(pid, p.pid());
  EXPECT_NE(pid, ::getpid());
  EXPECT_EQ(p.ident(), p.pid());
  EXPECT_EQ(p.exitcode(), 0);
}

struct Doubler : Process {
  Doubler(mproc::Connection out, int value) : Process(ProcessOptions{.name = "doubler"}), out_(out), value_(value) {}
  void run() override { out_.send(value_ * 2); }
  mproc::Connection out_;
  int value_;
};

TEST(ProcessStart, ASubclassOverridingRunRunsItsRun) {
  auto [parent_end, child_end] = mproc::Pipe();
  Doubler d(child_end, 21);
  d.start();
  EXPECT_EQ(parent_end.recv<int>(), 42);
  d.join();
  EXPECT_EQ(d.name(), "doubler");
  EXPECT_EQ(d.exitcode(), 0);
}

TEST(ProcessStart, StartingTwiceIsUsageError) {
  Process p([] {});
  p.start();
  expect_throw_containing<mproc::UsageError>([&] { p.start(); }, "cannot start a process twice");
  p.join();
  expect_throw_containing<mproc::UsageError>([&] { p.start(); }, "cannot start a process twice");
}

TEST(ProcessExitcode, EmptyWhileRunningThenZero) {
  auto [parent_end, child_end] = mproc::Pipe();
  Process p([child_end = child_end]() mutable { (void)child_end.recv<int>(); });
  EXPECT_EQ(p.exitcode(), std::nullopt);
  EXPECT_EQ(p.pid(), std::nullopt);
  p.start();
  EXPECT_EQ(p.exitcode(), std::nullopt);
  EXPECT_TRUE(p.is_alive());
  parent_end.send(1);
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_FALSE(p.is_alive());
}

TEST(ProcessExitcode, OneAfterAnUncaughtExceptionReportedUnderTheProcessName) {
  CapturedFd err(2);
  Process p(ProcessOptions{.name = "thrower"}, [] { throw std::invalid_argument("bad input"); });
  p.start();
  p.join();
  std::string stderr_text = err.output();
  EXPECT_EQ(p.exitcode(), 1);
  EXPECT_EQ(stderr_text, "Process thrower:\nstd::invalid_argument: bad input\n");
}

TEST(ProcessExitcode, OneAfterAnExceptionNotFromStdException) {
  CapturedFd err(2);
  Process p([] { throw 42; });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 1);
  EXPECT_NE(err.output().find("Process " + p.name() + ":"), std::string::npos);
}

struct ReportsDestruction {
  mproc::Connection out;
  ~ReportsDestruction() { out.send(std::string("unwound")); }
};

TEST(ProcessExitcode, NAfterMprocExitWhichUnwindsTheStack) {
  auto [parent_end, child_end] = mproc::Pipe();
  Process p([child_end = child_end] {
    ReportsDestruction guard{child_end};
    mproc::exit(7);
  });
  p.start();
  EXPECT_EQ(parent_end.recv<std::string>(), "unwound");
  p.join();
  EXPECT_EQ(p.exitcode(), 7);
}

TEST(ProcessExitcode, MinusTheSignalAfterTerminateOrKill) {
  Process t([] { for (;;) ::pause(); });
  Process k([] { for (;;) ::pause(); });
  t.start();
  k.start();
  t.terminate();
  k.kill();
  t.join();
  k.join();
  EXPECT_EQ(t.exitcode(), -SIGTERM);
  EXPECT_EQ(k.exitcode(), -SIGKILL);
  t.terminate();  // harmless once ended
}

TEST(ProcessJoin, TimeoutReturnsFalseWhileRunningAndTrueOnceEnded) {
  Process p([] { for (;;) ::pause(); });
  p.start();
  auto before = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.join(100ms));
  auto waited = std::chrono::steady_clock::now() - before;
  EXPECT_GE(waited, 90ms);
  EXPECT_LT(waited, 5s);
  EXPECT_TRUE(p.is_alive());
  p.terminate();
  EXPECT_TRUE(p.join(10s));
  EXPECT_TRUE(p.join(0ms));
}

TEST(ProcessJoin, MisuseIsUsageError) {
  Process p([] {});
  expect_throw_containing<mproc::UsageError>([&] { p.join(); }, "can only join a started process");
  expect_throw_containing<mproc::UsageError>([] { mproc::current_process().join(); }, "can only join a child");
  expect_throw_containing<mproc::UsageError>([&] { p.terminate(); }, "process not started");
}

TEST(ProcessClose, OnlyAfterTheProcessEndedAndThenEverythingIsUsageError) {
  Process p([] { for (;;) ::pause(); });
  p.start();
  expect_throw_containing<mproc::UsageError>([&] { p.close(); }, "still running");
  p.kill();
  p.join();
  p.close();
  expect_throw_containing<mproc::UsageError>([&] { (void)p.is_alive(); }, "closed");
  expect_throw_containing<mproc::UsageError>([&] { (void)p.exitcode(); }, "closed");
  expect_throw_containing<mproc::UsageError>([&] { (void)p.sentinel(); }, "closed");
  expect_throw_containing<mproc::UsageError>([&] { p.join(); }, "closed");
}

TEST(ProcessSentinel, UsageErrorBeforeStartThenReadableWhenTheProcessEnds) {
  auto [parent_end, child_end] = mproc::Pipe();
  Process p([child_end = child_end]() mutable { (void)child_end.recv<int>(); });
  expect_throw_containing<mproc::UsageError>([&] { (void)p.sentinel(); }, "process not started");
  p.start();
  int sentinel = p.sentinel();
  EXPECT_TRUE(mproc::wait({sentinel}, 10ms).empty());
  parent_end.send(0);
  EXPECT_EQ(mproc::wait({sentinel}, 10s).size(), 1u);
  p.join();
  EXPECT_EQ(p.sentinel(), sentinel);  // still valid after the end, until close()
}

TEST(ProcessNames, FollowPython) {
  Process a([] {});
  Process b([] {});
  int na = std::stoi(a.name().substr(8));
  EXPECT_EQ(a.name(), "Process-" + std::to_string(na));
  EXPECT_EQ(b.name(), "Process-" + std::to_string(na + 1));
  EXPECT_EQ(Process(ProcessOptions{.name = "worker"}).name(), "worker");
  b.set_name("renamed");
  EXPECT_EQ(b.name(), "renamed");
  EXPECT_EQ(mproc::current_process().name(), "MainProcess");
  EXPECT_EQ(mproc::current_process().pid(), ::getpid());
  EXPECT_FALSE(mproc::parent_process().has_value());

  // In a child: its own name, its children's names, its parent.
  auto [parent_end, child_end] = mproc::Pipe();
  Process c([child_end = child_end]() mutable {
    Process grandchild([child_end]() mutable {
      Process great([child_end]() mutable { child_end.send(mproc::current_process().name()); });
      great.start();
      great.join();
      child_end.send(mproc::current_process().name());
      child_end.send(mproc::parent_process()->name());
    });
    grandchild.start();
    grandchild.join();
    child_end.send(mproc::current_process().name());
    child_end.send(mproc::parent_process()->name());
    child_end.send(*mproc::parent_process()->pid());
  });
  c.start();
  std::string child_name = c.name();
  EXPECT_EQ(parent_end.recv<std::string>(), child_name + ":1:1");
  EXPECT_EQ(parent_end.recv<std::string>(), child_name + ":1");
  EXPECT_EQ(parent_end.recv<std::string>(), child_name);
  EXPECT_EQ(parent_end.recv<std::string>(), child_name);
  EXPECT_EQ(parent_end.recv<std::string>(), "MainProcess");
  EXPECT_EQ(parent_end.recv<int>(), ::getpid());
  c.join();
  EXPECT_EQ(c.exitcode(), 0);
}

TEST(ProcessParent, AChildSeesItsParentEnd) {
  // The child starts a grandchild that watches its parent (the child) through
  // parent_process(); the test then kills the child.
  auto [parent_end, child_end] = mproc::Pipe();
  Process child([child_end = child_end]() mutable {
    Process watcher([child_end]() mutable {
      auto parent = mproc::parent_process();
      child_end.send(parent->is_alive());
      child_end.send(parent->join(30s));
      child_end.send(parent->is_alive());
    });
    watcher.start();
    for (;;) ::pause();
  });
  child.start();
  EXPECT_TRUE(parent_end.recv<bool>());
  child.kill();
  child.join();
  EXPECT_TRUE(parent_end.recv<bool>());
  EXPECT_FALSE(parent_end.recv<bool>());
}

TEST(ProcessChildren, ActiveChildrenListsTheRunningAndReapsTheRest) {
  Process quick([] {});
  Process slow([] { for (;;) ::pause(); });
  quick.start();
  slow.start();
  ASSERT_TRUE(mproc::wait({quick.sentinel()}, 10s).size() == 1);
  auto children = mproc::active_children();
  ASSERT_EQ(children.size(), 1u);
  EXPECT_EQ(children[0], slow);
  EXPECT_EQ(children[0].pid(), slow.pid());
  children[0].terminate();
  slow.join();
  EXPECT_TRUE(mproc::active_children().empty());
}

TEST(ProcessChildren, FinishedChildrenAreReapedWithoutAJoin) {
  Process p([] {});
  p.start();
  int pid = *p.pid();
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (process_exists(pid) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(process_exists(pid)) << "child " << pid << " is still a zombie";
  EXPECT_EQ(p.exitcode(), 0);  // recorded by the reaper
}

TEST(ProcessChildren, ANonChildProcessCannotBeJoined) {
  auto [parent_end, child_end] = mproc::Pipe();
  Process sibling([] { for (;;) ::pause(); });
  sibling.start();
  Process other([sibling, child_end = child_end]() mutable {
    try {
      Process copy = sibling;
      copy.join();
      child_end.send(std::string("joined"));
    } catch (const mproc::UsageError& e) {
      child_end.send(std::string(e.what()));
    }
  });
  other.start();
  EXPECT_NE(parent_end.recv<std::string>().find("can only join a child"), std::string::npos);
  other.join();
  sibling.kill();
  sibling.join();
}

TEST(ProcessStart, OnlyTheProcessThatCreatedTheObjectMayStartIt) {
  auto [parent_end, child_end] = mproc::Pipe();
  Process inherited([] {});
  Process starter([inherited, child_end = child_end]() mutable {
    std::vector<std::string> errors;
    for (auto attempt : {+[](Process& p) { p.start(); }, +[](Process&) { mproc::current_process().start(); }}) {
      try {
        attempt(inherited);
        errors.push_back("started");
      } catch (const mproc::UsageError& e) {
        errors.push_back(e.what());
      }
    }
    child_end.send(errors);
  });
  starter.start();
  ASSERT_TRUE(parent_end.poll(10s));
  auto errors = parent_end.recv<std::vector<std::string>>();
  starter.join();
  EXPECT_EQ(starter.exitcode(), 0);
  ASSERT_EQ(errors.size(), 2u);
  for (const std::string& e : errors) EXPECT_NE(e.find("created by the current process"), std::string::npos) << e;
  expect_throw_containing<mproc::UsageError>([] { mproc::current_process().start(); }, "created by the current");
}

TEST(ProcessClose, TheCurrentProcessCannotBeClosed) {
  auto [parent_end, child_end] = mproc::Pipe();
  Process p([child_end = child_end]() mutable {
    try {
      mproc::current_process().close();
      child_end.send(std::string("closed"));
    } catch (const mproc::UsageError& e) {
      child_end.send(std::string(e.what()));
    }
    // The object runs on: its target (this lambda) must still be alive.
    child_end.send(mproc::current_process().name());
  });
  p.start();
  ASSERT_TRUE(parent_end.poll(10s));
  EXPECT_NE(parent_end.recv<std::string>().find("cannot close the current process"), std::string::npos);
  ASSERT_TRUE(parent_end.poll(10s));
  EXPECT_EQ(parent_end.recv<std::string>(), p.name());
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  expect_throw_containing<mproc::UsageError>([] { mproc::current_process().close(); }, "current process");
}

// A forked child holds copies of its siblings' Process objects, whose locks a
// thread of the parent may have held at the moment of fork(). Using them in
// the child must not wait for that lock.
TEST(ProcessChildren, SiblingObjectsAreUsableInAChildWhateverTheParentsThreadsHeld) {
  Process sibling([] { for (;;) ::pause(); });
  sibling.start();
  std::atomic<bool> stop{false};
  std::thread poller([&] {
    while (!stop) (void)sibling.exitcode();  // takes and releases the sibling's lock
  });
  auto [parent_end, child_end] = mproc::Pipe();
  constexpr int kChildren = 40;
  std::vector<Process> children;
  for (int i = 0; i < kChildren; ++i) {
    children.emplace_back([sibling, child_end = child_end]() mutable {
      Process copy = sibling;
      (void)copy.sentinel();
      child_end.send(copy.pid().value_or(0));
      copy.close();
    });
    children.back().start();
  }
  int answered = 0;
  while (answered < kChildren && parent_end.poll(10s)) {
    EXPECT_EQ(parent_end.recv<int>(), *sibling.pid());
    ++answered;
  }
  stop = true;
  poller.join();
  EXPECT_EQ(answered, kChildren) << "children hung on a lock inherited from the parent";
  for (Process& c : children) {
    if (!c.join(5s)) c.kill();
    c.join();
    EXPECT_EQ(c.exitcode(), 0);
  }
  sibling.kill();
  sibling.join();
}

TEST(ProcessDaemon, ADaemonCannotStartChildren) {
  auto [parent_end, child_end] = mproc::Pipe();
  Process d([child_end = child_end]() mutable {
    try {
      Process([] {}).start();
      child_end.send(std::string("started"));
    } catch (const mproc::UsageError& e) {
      child_end.send(std::string(e.what()));
    }
  });
  d.set_daemon(true);
  EXPECT_TRUE(d.daemon());
  d.start();
  expect_throw_containing<mproc::UsageError>([&] { d.set_daemon(false); }, "already started");
  EXPECT_NE(parent_end.recv<std::string>().find("daemonic processes are not allowed"), std::string::npos);
  d.join();
  EXPECT_EQ(d.exitcode(), 0);
}

// A fresh exec of this binary that starts a daemonic child (which sleeps)
// and a plain child (which reports after 300 ms), reports their pids, and
// returns from main: the daemon must be terminated, the other joined.
MPROC_TEST_HELPER(exit_with_children) {
  mproc::Connection out = mproc::Connection::from_socket(mproc::UniqueFd(std::atoi(args.at(0).c_str())));
  Process daemon(ProcessOptions{.daemon = true}, [] { for (;;) ::pause(); });
  Process worker([out]() mutable {
    std::this_thread::sleep_for(300ms);
    out.send(std::string("worker done"));
  });
  daemon.start();
  worker.start();
  out.send(std::make_pair(*daemon.pid(), *worker.pid()));
  return 0;
}

TEST(ProcessDaemon, AtNormalExitDaemonsAreTerminatedAndOthersJoined) {
  auto [mine, theirs] = mproc::Pipe();
  auto helper = mproc::testing::ChildProcess::spawn_helper("exit_with_children", {std::to_string(theirs.fileno())},
                                                          {theirs.fileno()});
  theirs.close();
  auto [daemon_pid, worker_pid] = mine.recv<std::pair<int, int>>();
  EXPECT_EQ(mine.recv<std::string>(), "worker done");  // joined before the helper ended
  EXPECT_EQ(helper.wait(), 0);
  EXPECT_TRUE(ends_within(daemon_pid, 10s));
  EXPECT_FALSE(process_exists(worker_pid));
}

// Starts a daemonic child, reports its pid and waits to be killed.
MPROC_TEST_HELPER(daemon_then_wait) {
  mproc::Connection out = mproc::Connection::from_socket(mproc::UniqueFd(std::atoi(args.at(0).c_str())));
  Process daemon(ProcessOptions{.daemon = true}, [] { for (;;) ::pause(); });
  daemon.start();
  out.send(*daemon.pid());
  for (;;) ::pause();
}

TEST(ProcessDaemon, DaemonsDieWhenTheirParentIsKilled) {
  auto [mine, theirs] = mproc::Pipe();
  auto helper = mproc::testing::ChildProcess::spawn_helper("daemon_then_wait", {std::to_string(theirs.fileno())},
                                                          {theirs.fileno()});
  theirs.close();
  int daemon_pid = mine.recv<int>();
  ASSERT_TRUE(process_exists(daemon_pid));
  ::kill(helper.pid(), SIGKILL);
  EXPECT_EQ(helper.wait(), -SIGKILL);
  EXPECT_TRUE(ends_within(daemon_pid, 5s)) << "daemon " << daemon_pid << " outlived its parent";
}

// atexit handlers and static destructors of the parent must not run in a child.
int g_atexit_fd = -1;
struct WritesOnDestruction {
  ~WritesOnDestruction() {
    if (g_atexit_fd >= 0) (void)!::write(g_atexit_fd, "D", 1);
  }
};
WritesOnDestruction g_static_object;

TEST(ProcessExitPath, ChildDoesNotRunTheParentsAtexitHandlersOrDestructors) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  g_atexit_fd = fds[1];
  static bool registered = false;
  if (!registered) {
    std::atexit([] {
      if (g_atexit_fd >= 0) (void)!::write(g_atexit_fd, "A", 1);
    });
    registered = true;
  }
  Process p([] { std::printf("child output\n"); });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  g_atexit_fd = -1;
  ::close(fds[1]);
  EXPECT_EQ(read_all(fds[0]), "");  // neither "A" nor "D" from the child
  ::close(fds[0]);
}

TEST(ProcessExitPath, FlushesOutputAndRunsFinalizersInPriorityOrder) {
  CapturedFd out(1);
  mproc::Finalize parents([] { std::printf("parent's finalizer\n"); });
  Process p([] {
    mproc::Finalize low([] { std::printf("low"); }, -5);
    mproc::Finalize high([] { std::printf("high "); }, 10);
    mproc::Finalize first([] { std::printf("first "); });
    mproc::Finalize second([] { std::printf("second "); });
    mproc::Finalize cancelled([] { std::printf("cancelled "); });
    cancelled.cancel();
    std::printf("unterminated line, ");  // no newline: only the exit path's flush writes it
  });
  p.start();
  p.join();
  std::string text = out.output();
  parents.cancel();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(text, "unterminated line, high second first low");
}

TEST(ProcessExitPath, StandardInputIsDetachedInTheChild) {
  auto [parent_end, child_end] = mproc::Pipe();
  Process p([child_end = child_end]() mutable {
    char c;
    child_end.send(::read(0, &c, 1));  // /dev/null: end of file at once
  });
  p.start();
  EXPECT_EQ(parent_end.recv<long>(), 0);
  p.join();
}

TEST(Finalize, RunsOnceCanBeCancelledAndReportsWhetherActive) {
  int runs = 0;
  mproc::Finalize f([&] { ++runs; });
  EXPECT_TRUE(f.still_active());
  f();
  f();
  EXPECT_EQ(runs, 1);
  EXPECT_FALSE(f.still_active());
  mproc::Finalize g([&] { ++runs; });
  g.cancel();
  g();
  EXPECT_EQ(runs, 1);
}

MPROC_TEST_HELPER(finalizer_at_exit) {
  mproc::Connection out = mproc::Connection::from_socket(mproc::UniqueFd(std::atoi(args.at(0).c_str())));
  mproc::Finalize([out]() mutable { out.send(std::string("finalized at exit")); });
  return 0;
}

TEST(Finalize, RunsWhenTheMainProgramExits) {
  auto [mine, theirs] = mproc::Pipe();
  auto helper = mproc::testing::ChildProcess::spawn_helper("finalizer_at_exit", {std::to_string(theirs.fileno())},
                                                          {theirs.fileno()});
  theirs.close();
  EXPECT_EQ(mine.recv<std::string>(), "finalized at exit");
  EXPECT_EQ(helper.wait(), 0);
}

TEST(ProcessCpuCount, CountsTheCpusThisProcessMayUse) {
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  EXPECT_EQ(mproc::cpu_count(), CPU_COUNT(&set));
  EXPECT_GE(mproc::cpu_count(), 1);
}

}  // namespace
