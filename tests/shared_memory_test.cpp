// SharedMemory: creating, attaching, errors, closing, unlinking, travelling
// by name to other processes, and the tracker that unlinks the segments of
// killed processes.

#include "mproc/shared_memory.hpp"

#include <gtest/gtest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/errors.hpp"
#include "mproc/process.hpp"
#include "os/io.hpp"
#include "os/pidfd.hpp"
#include "os/poll.hpp"
#include "os/process.hpp"
#include "os/socket.hpp"
#include "shared_memory/tracker.hpp"
#include "support/child.hpp"
#include "support/helpers.hpp"
#include "support/shm_guard.hpp"

namespace {

using mproc::SharedMemory;
using mproc::testing::ChildProcess;
using mproc::testing::shm_exists;
using mproc::testing::ShmGuard;
using mproc::testing::unique_shm_name;
using mproc::testing::wait_until_shm_gone;
using namespace std::chrono_literals;

TEST(SharedMemoryCreate, GeneratesAPsmNameAndAZeroFilledSegment) {
  auto shm = SharedMemory::create(10000);
  ShmGuard guard(shm.name());
  EXPECT_EQ(shm.name().rfind("psm_", 0), 0u) << shm.name();
  EXPECT_EQ(shm.name().find('/'), std::string::npos);
  EXPECT_EQ(shm.size(), 10000u);
  ASSERT_EQ(shm.buf().size(), 10000u);
  EXPECT_TRUE(std::ranges::all_of(shm.buf(), [](std::byte b) { return b == std::byte{0}; }));
  EXPECT_TRUE(shm_exists(shm.name()));
  EXPECT_TRUE(shm.track());
  shm.unlink();
  EXPECT_FALSE(shm_exists(shm.name()));
}

TEST(SharedMemoryCreate, TwoGeneratedNamesDiffer) {
  auto a = SharedMemory::create(1);
  ShmGuard guard_a(a.name());
  auto b = SharedMemory::create(1);
  ShmGuard guard_b(b.name());
  EXPECT_NE(a.name(), b.name());
  a.unlink();
  b.unlink();
}

TEST(SharedMemoryAttach, SeesTheCreatorsBytesAndTheSegmentsSize) {
  std::string name = unique_shm_name("attach");
  ShmGuard guard(name);
  auto created = SharedMemory::create(name, 4096);
  std::memcpy(created.buf().data(), "hello", 5);
  auto attached = SharedMemory::attach(name);
  EXPECT_EQ(attached.name(), name);
  EXPECT_EQ(attached.size(), 4096u);
  EXPECT_EQ(std::memcmp(attached.buf().data(), "hello", 5), 0);
  attached.buf()[10] = std::byte{42};
  EXPECT_EQ(created.buf()[10], std::byte{42});
  created.unlink();
}

TEST(SharedMemoryAttach, DataIsVisibleBothWaysWithAForkedChild) {
  auto shm = SharedMemory::create(1 << 16);
  ShmGuard guard(shm.name());
  shm.buf()[100] = std::byte{7};
  auto child = ChildProcess::fork([name = shm.name()] {
    auto mine = SharedMemory::attach(name, false);
    if (mine.size() != (1 << 16) || mine.buf()[100] != std::byte{7}) return 1;
    mine.buf()[200] = std::byte{9};
    return 0;
  });
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(shm.buf()[200], std::byte{9});
  shm.unlink();
}

TEST(SharedMemoryCreate, ExistingNameThrowsFileExists) {
  std::string name = unique_shm_name("exists");
  ShmGuard guard(name);
  auto first = SharedMemory::create(name, 64);
  try {
    (void)SharedMemory::create(name, 64);
    FAIL() << "no FileExistsError";
  } catch (const mproc::FileExistsError& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), std::errc::file_exists);
  }
  EXPECT_TRUE(shm_exists(name));  // the first one is untouched
  EXPECT_EQ(first.buf().size(), 64u);
  first.unlink();
}

TEST(SharedMemoryAttach, MissingNameThrowsFileNotFound) {
  std::string name = unique_shm_name("missing");
  try {
    (void)SharedMemory::attach(name);
    FAIL() << "no FileNotFoundError";
  } catch (const mproc::FileNotFoundError& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
  }
}

TEST(SharedMemoryCreate, ZeroOrNegativeSizeThrowsInvalidArgument) {
  std::string name = unique_shm_name("size");
  ShmGuard guard(name);
  EXPECT_THROW((void)SharedMemory::create(0), std::invalid_argument);
  EXPECT_THROW((void)SharedMemory::create(name, 0), std::invalid_argument);
  int negative = -5;
  EXPECT_THROW((void)SharedMemory::create(name, static_cast<std::size_t>(negative)), std::invalid_argument);
  EXPECT_FALSE(shm_exists(name));
}

TEST(SharedMemoryName, WithASlashEmptyOrTooLongThrowsInvalidArgument) {
  EXPECT_THROW((void)SharedMemory::create("a/b", 8), std::invalid_argument);
  EXPECT_THROW((void)SharedMemory::create("/leading", 8), std::invalid_argument);
  EXPECT_THROW((void)SharedMemory::create("", 8), std::invalid_argument);
  EXPECT_THROW((void)SharedMemory::create(std::string(256, 'x'), 8), std::invalid_argument);
  EXPECT_THROW((void)SharedMemory::attach("a/b"), std::invalid_argument);
  try {
    (void)SharedMemory::create("bad/name", 8);
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("bad/name"), std::string::npos) << e.what();
  }
}

TEST(SharedMemoryClose, ThenBufThrowsUsageErrorAndClosingTwiceIsFine) {
  auto shm = SharedMemory::create(128);
  ShmGuard guard(shm.name());
  SharedMemory copy = shm;
  EXPECT_FALSE(shm.closed());
  shm.close();
  EXPECT_TRUE(shm.closed());
  EXPECT_TRUE(copy.closed());  // one handle, shared
  EXPECT_THROW((void)shm.buf(), mproc::UsageError);
  EXPECT_THROW((void)copy.buf(), mproc::UsageError);
  shm.close();
  EXPECT_EQ(shm.size(), 128u);
  EXPECT_TRUE(shm_exists(shm.name()));  // close never unlinks
  shm.unlink();                         // unlink after close works
  EXPECT_FALSE(shm_exists(shm.name()));
}

TEST(SharedMemoryClose, AStaleSpanFaultsInsteadOfWritingIntoTheNextMapping) {
  auto shm = SharedMemory::create(1 << 20);
  ShmGuard guard(shm.name());
  auto stale = shm.buf();
  SharedMemory copy = shm;
  copy.close();  // closes the mapping `stale` points into, for every copy
  auto next = SharedMemory::create(1 << 20);  // would take the freed address
  ShmGuard next_guard(next.name());
  auto child = ChildProcess::fork([stale] {
    std::signal(SIGSEGV, SIG_DFL);  // a sanitizer's handler would turn it into an abort
    *static_cast<volatile std::byte*>(stale.data() + 100) = std::byte{42};
    return 0;
  });
  EXPECT_EQ(child.wait(), -SIGSEGV);
  EXPECT_EQ(next.buf()[100], std::byte{0});
  shm.unlink();
  next.unlink();
}

TEST(SharedMemoryCreate, GeneratedNamesWorkInAChildForkedWhileAnotherThreadCreates) {
  // A lock another thread holds at fork() stays locked in the child: name
  // generation must not take one.
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "ASan's allocator lock has the same problem: a child may hang in malloc";
#endif
  std::atomic<bool> stop{false};
  std::thread busy([&] {
    while (!stop) SharedMemory::create(16, false).unlink();
  });
  int failed = 0;
  for (int i = 0; i < 40; ++i) {
    auto child = ChildProcess::fork([] {
      ::alarm(5);
      SharedMemory::create(16, false).unlink();
      return 0;
    });
    if (child.wait() != 0) ++failed;
  }
  stop = true;
  busy.join();
  EXPECT_EQ(failed, 0);
}

TEST(SharedMemoryUnlink, TwiceThrowsFileNotFoundAndAttachThenFails) {
  auto shm = SharedMemory::create(8);
  ShmGuard guard(shm.name());
  shm.unlink();
  EXPECT_THROW(shm.unlink(), mproc::FileNotFoundError);
  EXPECT_THROW((void)SharedMemory::attach(shm.name()), mproc::FileNotFoundError);
  shm.buf()[0] = std::byte{1};  // the mapping outlives the name, as in Python
}

TEST(SharedMemoryDestructor, ClosesButNeverUnlinks) {
  std::string name;
  {
    auto shm = SharedMemory::create(8);
    name = shm.name();
  }
  ShmGuard guard(name);
  EXPECT_TRUE(shm_exists(name));
  SharedMemory::attach(name).unlink();
}

TEST(SharedMemoryHandle, CopiesAndEmptyHandlesBehave) {
  SharedMemory empty;
  EXPECT_TRUE(empty.closed());
  EXPECT_THROW((void)empty.buf(), mproc::UsageError);
  auto shm = SharedMemory::create(16);
  ShmGuard guard(shm.name());
  SharedMemory copy = shm;
  EXPECT_TRUE(copy == shm);
  EXPECT_EQ(copy.buf().data(), shm.buf().data());
  SharedMemory moved = std::move(copy);
  EXPECT_TRUE(moved == shm);
  shm.unlink();
}

TEST(SharedMemoryCodec, TravelsByNameToAChildStartedBeforeTheSegmentExisted) {
  auto [parent_end, child_end] = mproc::Pipe();
  mproc::Process child([child_end = child_end]() mutable {
    auto shm = child_end.recv<SharedMemory>();
    if (shm.size() != 4096 || shm.buf()[0] != std::byte{'p'}) mproc::exit(2);
    shm.buf()[1] = std::byte{'c'};
    child_end.send(shm.name());
  });
  child.start();
  auto shm = SharedMemory::create(4096);
  ShmGuard guard(shm.name());
  shm.buf()[0] = std::byte{'p'};
  parent_end.send(shm);
  ASSERT_TRUE(parent_end.poll(30s));
  EXPECT_EQ(parent_end.recv<std::string>(), shm.name());
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_EQ(shm.buf()[1], std::byte{'c'});
  EXPECT_TRUE(shm_exists(shm.name()));  // the child's exit did not unlink it
  shm.unlink();
}

TEST(SharedMemoryCodec, DecodingAnUnlinkedSegmentThrowsFileNotFound) {
  auto shm = SharedMemory::create(16);
  ShmGuard guard(shm.name());
  auto message = mproc::encode(shm);
  shm.unlink();
  EXPECT_THROW((void)mproc::decode<SharedMemory>(message.bytes()), mproc::FileNotFoundError);
}

// --- the tracker -----------------------------------------------------------

// A child (an mproc::Process) that creates a segment, reports its name and
// waits to be killed; killed when the test ends, whatever happened.
class SegmentCreator {
 public:
  explicit SegmentCreator(std::size_t size, bool track = true) {
    auto [parent_end, child_end] = mproc::Pipe();
    process_ = mproc::Process([child_end = child_end, size, track]() mutable {
      auto shm = SharedMemory::create(size, track);
      child_end.send(shm.name());
      std::this_thread::sleep_for(60s);
    });
    process_.start();
    if (parent_end.poll(30s)) name_ = parent_end.recv<std::string>();
  }
  ~SegmentCreator() {
    if (process_.is_alive()) kill();
  }
  SegmentCreator(const SegmentCreator&) = delete;
  SegmentCreator& operator=(const SegmentCreator&) = delete;

  // The segment's name; empty if the child never reported one.
  const std::string& name() const { return name_; }

  // SIGKILLs the child and reaps it; returns its exit code.
  std::optional<int> kill() {
    process_.kill();
    process_.join();
    return process_.exitcode();
  }

 private:
  mproc::Process process_;
  std::string name_;
};

TEST(SharedMemoryTracker, UnlinksTheSegmentOfAKilledCreatorWithinOneSecond) {
  SegmentCreator creator(1 << 20);
  const std::string& name = creator.name();
  ASSERT_FALSE(name.empty());
  ShmGuard guard(name);
  ASSERT_TRUE(shm_exists(name));
  EXPECT_EQ(creator.kill(), -SIGKILL);
  EXPECT_TRUE(wait_until_shm_gone(name, 1000ms)) << name << " still in /dev/shm";
}

TEST(SharedMemoryTracker, UnlinksTheSegmentsOfAKilledChildWithItsOwnTracker) {
  // A child forked without mproc::Process: unless an earlier test in this
  // binary started the parent's tracker, the child starts one of its own.
  auto [parent_end, child_end] = mproc::Pipe();
  auto creator = ChildProcess::fork([child_end = child_end]() mutable {
    auto a = SharedMemory::create(4096);
    auto b = SharedMemory::create(4096);
    child_end.send(std::make_pair(a.name(), b.name()));
    std::this_thread::sleep_for(60s);
    return 0;
  });
  ASSERT_TRUE(parent_end.poll(30s));
  auto [a, b] = parent_end.recv<std::pair<std::string, std::string>>();
  ShmGuard guard_a(a), guard_b(b);
  ASSERT_TRUE(shm_exists(a));
  ASSERT_TRUE(shm_exists(b));
  ASSERT_FALSE(static_cast<bool>(mproc::os::kill(creator.pid(), SIGKILL)));
  EXPECT_EQ(creator.wait(), -SIGKILL);
  EXPECT_TRUE(wait_until_shm_gone(a, 1000ms)) << a;
  EXPECT_TRUE(wait_until_shm_gone(b, 1000ms)) << b;
}

TEST(SharedMemoryTracker, KeepsASegmentAnotherLiveProcessHoldsWhenItsCreatorIsKilled) {
  SegmentCreator creator(64);
  const std::string& name = creator.name();
  ASSERT_FALSE(name.empty());
  ShmGuard guard(name);
  auto mine = SharedMemory::attach(name);  // tracked: this process holds it too
  creator.kill();
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(shm_exists(name));
  mine.unlink();
}

TEST(SharedMemoryTracker, KeepsTheSegmentOfACreatorThatExitedNormally) {
  auto [parent_end, child_end] = mproc::Pipe();
  mproc::Process creator([child_end = child_end]() mutable {
    auto shm = SharedMemory::create(256);
    shm.buf()[0] = std::byte{77};
    child_end.send(shm.name());
  });
  creator.start();
  ASSERT_TRUE(parent_end.poll(30s));
  std::string name = parent_end.recv<std::string>();
  ShmGuard guard(name);
  creator.join();
  EXPECT_EQ(creator.exitcode(), 0);
  std::this_thread::sleep_for(300ms);  // time for a tracker to (wrongly) act
  ASSERT_TRUE(shm_exists(name));
  auto shm = SharedMemory::attach(name);
  EXPECT_EQ(shm.buf()[0], std::byte{77});
  shm.unlink();
}

TEST(SharedMemoryTracker, UntrackedSegmentSurvivesItsKilledCreator) {
  SegmentCreator creator(64, /*track=*/false);
  const std::string& name = creator.name();
  ASSERT_FALSE(name.empty());
  ShmGuard guard(name);
  creator.kill();
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(shm_exists(name));
}

// Re-executed as a program of its own, so that its tracker is its own and
// ends with it: creates segments, unlinks those named "unlink:...", leaves
// the others, and exits normally. Its stderr (and its tracker's) is args[0].
MPROC_TEST_HELPER(shm_exit_normally) {
  (void)mproc::os::redirect(std::stoi(args[0]), 2);
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "generated") {  // its UNREGISTER waits for the goodbye
      SharedMemory::create(4096).unlink();
      continue;
    }
    bool unlink = args[i].rfind("unlink:", 0) == 0;
    auto shm = SharedMemory::create(unlink ? args[i].substr(7) : args[i], 4096);
    if (unlink) shm.unlink();
  }
  return 0;
}

// Runs `helper` (which redirects its stderr to its first argument) and
// returns what it and its tracker wrote on stderr: all of it, since the read
// ends when both have closed it.
std::string run_capturing_stderr(const char* helper_name, const std::vector<std::string>& names) {
  auto pair = mproc::os::socket_pair();
  EXPECT_TRUE(pair.ok());
  std::vector<std::string> args{std::to_string(pair.value.second.get())};
  args.insert(args.end(), names.begin(), names.end());
  auto helper = ChildProcess::spawn_helper(helper_name, args, {pair.value.second.get()});
  pair.value.second.reset();
  std::string output;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    mproc::os::PollEntry entry{pair.value.first.get()};
    auto polled = mproc::os::poll_readable({&entry, 1}, 1s);
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "the helper's stderr was not closed in time";
      break;
    }
    if (!polled.ok() || polled.value == 0) continue;
    char buffer[4096];
    auto got = mproc::os::read_some(pair.value.first.get(), std::as_writable_bytes(std::span(buffer)));
    if (!got.ok() || got.value == 0) break;
    output.append(buffer, got.value);
  }
  EXPECT_EQ(helper.wait(), 0);
  return output;
}

std::string run_exit_normally(const std::vector<std::string>& names) {
  return run_capturing_stderr("shm_exit_normally", names);
}

TEST(SharedMemoryTracker, UnlinkUnregistersSoTheTrackerReportsNothingAtShutdown) {
  std::string name = unique_shm_name("unregistered");
  ShmGuard guard(name);
  std::string output = run_exit_normally({"unlink:" + name});
  EXPECT_EQ(output.find("leaked"), std::string::npos) << output;
  EXPECT_EQ(output.find("unlink"), std::string::npos) << output;
  EXPECT_FALSE(shm_exists(name));
}

TEST(SharedMemoryTracker, UnlinkOfAGeneratedNameUnregistersByTheTimeTheProcessExits) {
  std::string output = run_exit_normally({"generated", "generated"});
  EXPECT_EQ(output.find("leaked"), std::string::npos) << output;
}

TEST(SharedMemoryTracker, UnlinksWhatIsLeftWithAWarningWhenTheProgramEnds) {
  std::string leaked = unique_shm_name("leaked");
  std::string unlinked = unique_shm_name("unlinked");
  ShmGuard guard_leaked(leaked), guard_unlinked(unlinked);
  std::string output = run_exit_normally({leaked, "unlink:" + unlinked});
  EXPECT_NE(output.find("There appear to be 1 leaked shared_memory objects"), std::string::npos) << output;
  EXPECT_NE(output.find("/" + leaked), std::string::npos) << output;
  EXPECT_EQ(output.find(unlinked), std::string::npos) << output;
  EXPECT_FALSE(shm_exists(leaked));
}

// A child that unlinks its parent's segment through a copy it was given at
// fork, having registered nothing itself: its deferred UNREGISTER must still
// reach the tracker, which otherwise reports the segment leaked at the end.
MPROC_TEST_HELPER(shm_child_unlinks_parents_segment) {
  (void)mproc::os::redirect(std::stoi(args[0]), 2);
  auto shm = SharedMemory::create(4096);
  mproc::Process child([shm]() mutable {
    shm.close();
    shm.unlink();
  });
  child.start();
  child.join();
  return child.exitcode() == 0 && !shm_exists(shm.name()) ? 0 : 1;
}

TEST(SharedMemoryTracker, AChildsDeferredUnregisterReachesTheTrackerThoughItRegisteredNothing) {
  std::string output = run_capturing_stderr("shm_child_unlinks_parents_segment", {});
  EXPECT_EQ(output.find("leaked"), std::string::npos) << output;
}

// Waits until process `pid` (not a child of this one) has ended.
bool wait_for_exit(int pid, std::chrono::milliseconds timeout) {
  auto pidfd = mproc::os::pidfd_open(pid);
  if (!pidfd.ok()) return pidfd.error.code == std::errc::no_such_process;
  mproc::os::PollEntry entry{pidfd.value.get()};
  auto polled = mproc::os::poll_readable({&entry, 1}, timeout);
  return polled.ok() && polled.value == 1;
}

// Kills a child that sleeps for a minute, however the test ends: no stray
// processes after a failure.
// SIGKILLs a creator of a fresh segment; whether the segment is gone within one second.
bool killed_creators_segment_goes() {
  SegmentCreator creator(4096);
  const std::string& name = creator.name();
  if (name.empty()) return false;
  ShmGuard guard(name);
  creator.kill();
  return wait_until_shm_gone(name, 1000ms);
}

TEST(SharedMemoryTracker, AKilledTrackerWithRecordsUnreadIsReplaced) {
  auto first = SharedMemory::create(16);
  ShmGuard first_guard(first.name());
  int tracker = mproc::detail::tracker::pid_for_testing();
  ASSERT_GT(tracker, 0);
  // A record the tracker never reads: its death then resets the connection
  // (ECONNRESET), rather than closing it (EPIPE).
  ASSERT_FALSE(static_cast<bool>(mproc::os::kill(tracker, SIGSTOP)));
  auto unread = SharedMemory::create(16);
  ShmGuard unread_guard(unread.name());
  ASSERT_FALSE(static_cast<bool>(mproc::os::kill(tracker, SIGKILL)));
  (void)mproc::os::kill(tracker, SIGCONT);
  ASSERT_TRUE(wait_for_exit(tracker, 5000ms));
  auto after = SharedMemory::create(16);
  ShmGuard after_guard(after.name());
  int replacement = mproc::detail::tracker::pid_for_testing();
  EXPECT_GT(replacement, 0);
  EXPECT_NE(replacement, tracker);
  auto attached = SharedMemory::attach(after.name());
  EXPECT_TRUE(killed_creators_segment_goes());
  first.unlink();
  unread.unlink();
  after.unlink();
}

TEST(SharedMemoryTracker, RunsInASessionOfItsOwn) {
  auto shm = SharedMemory::create(16);
  ShmGuard guard(shm.name());
  int tracker = mproc::detail::tracker::pid_for_testing();
  ASSERT_GT(tracker, 0);
  EXPECT_NE(::getsid(tracker), ::getsid(0));  // a kill of our group or session spares it
  EXPECT_EQ(::getsid(tracker), tracker);
  shm.unlink();
}

// Ignores SIGCHLD (the kernel then reaps children, and waitpid finds none),
// then creates a tracked segment: the tracker must start all the same.
MPROC_TEST_HELPER(shm_sigchld_ignored) {
  std::signal(SIGCHLD, SIG_IGN);
  try {
    SharedMemory::create(4096).unlink();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "create threw: %s\n", e.what());
    return 1;
  }
  return mproc::detail::tracker::pid_for_testing() > 0 ? 0 : 2;
}

TEST(SharedMemoryTracker, StartsWhenSIGCHLDIsIgnored) {
  EXPECT_EQ(ChildProcess::spawn_helper("shm_sigchld_ignored", {}).wait(), 0);
}

// Starts its tracker under a low soft descriptor limit; the tracker needs a
// pidfd per registrant, so it must have raised its own.
MPROC_TEST_HELPER(shm_low_descriptor_limit) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_max <= 64) return 0;  // nothing to raise: the check means nothing
  limit.rlim_cur = 64;
  ::setrlimit(RLIMIT_NOFILE, &limit);
  SharedMemory::create(4096).unlink();
  rlimit tracker{};
  if (::prlimit(mproc::detail::tracker::pid_for_testing(), RLIMIT_NOFILE, nullptr, &tracker) != 0) return 2;
  return tracker.rlim_cur == tracker.rlim_max ? 0 : 1;
}

TEST(SharedMemoryTracker, RaisesItsDescriptorLimitToTheHardLimit) {
  EXPECT_EQ(ChildProcess::spawn_helper("shm_low_descriptor_limit", {}).wait(), 0);
}

// Starts its tracker, lowers the tracker's descriptor limit so that it runs
// out of pidfds, then has more live creators than it can watch.
MPROC_TEST_HELPER(shm_unwatchable) {
  (void)mproc::os::redirect(std::stoi(args[0]), 2);
  SharedMemory::create(16).unlink();
  rlimit low{16, 16};
  if (::prlimit(mproc::detail::tracker::pid_for_testing(), RLIMIT_NOFILE, &low, nullptr) != 0) return 2;
  std::vector<std::unique_ptr<mproc::Process>> creators;
  for (int i = 0; i < 24; ++i) {
    creators.push_back(std::make_unique<mproc::Process>([] {
      auto shm = SharedMemory::create(64);
      std::this_thread::sleep_for(500ms);  // all live at once
      shm.unlink();
    }));
    creators.back()->start();
  }
  int failed = 0;
  for (auto& creator : creators) {
    creator->join();
    if (creator->exitcode() != 0) ++failed;
  }
  return failed == 0 ? 0 : 1;
}

TEST(SharedMemoryTracker, WarnsOnceWhenItCannotWatchAProcess) {
  std::string output = run_capturing_stderr("shm_unwatchable", {});
  std::string warning = "cannot watch a process";
  auto first = output.find(warning);
  EXPECT_NE(first, std::string::npos) << output;
  if (first != std::string::npos) {
    EXPECT_EQ(output.find(warning, first + 1), std::string::npos) << output;
  }
  EXPECT_EQ(output.find("leaked"), std::string::npos) << output;
}

TEST(SharedMemoryTracker, ForgetsAnAttacherThatExitedNormallySoAKilledCreatorsSegmentGoes) {
  SegmentCreator creator(4096);
  const std::string name = creator.name();
  ASSERT_FALSE(name.empty());
  ShmGuard guard(name);
  mproc::Process reader([name] {
    auto shm = SharedMemory::attach(name);
    if (shm.buf().size() != 4096) mproc::exit(3);
  });
  reader.start();
  reader.join();
  ASSERT_EQ(reader.exitcode(), 0);
  creator.kill();
  EXPECT_TRUE(wait_until_shm_gone(name, 1000ms)) << name << " still in /dev/shm";
}

// Keeps `threads` CPUs busy until destroyed: the tracker (at nice 10) is then
// preempted at arbitrary points, widening any window between its steps.
class Load {
 public:
  explicit Load(int threads) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this] {
        while (!stop_.load(std::memory_order_relaxed)) {
        }
      });
    }
  }
  ~Load() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// Unlinks every segment it holds however the test ends.
class ShmSet {
 public:
  ShmSet() = default;
  ShmSet(const ShmSet&) = delete;
  ShmSet& operator=(const ShmSet&) = delete;
  ~ShmSet() {
    for (const auto& shm : held_) (void)mproc::os::shm_remove("/" + shm.name());
  }
  void add(SharedMemory shm) { held_.push_back(std::move(shm)); }
  void unlink_all() {
    for (auto& shm : held_) shm.unlink();
    held_.clear();
  }

 private:
  std::vector<SharedMemory> held_;
};

// H1: a creator that says goodbye and exits normally must never be taken for
// a killed one. The tracker used to drain the socket, then look at the
// pidfds: a goodbye sent and an exit made between the two was a "death
// without goodbye", and its segments were unlinked. The tracker now looks at
// the pidfds first and acts only on deaths seen before a complete drain.
// The window cannot be forced from outside, so this widens it: with
// thousands of names registered, each REGISTER costs the tracker a scan of
// its table (it did, before names were hashed), so a drain of a burst of
// them takes a while, during which creators (under load) say goodbye and
// exit. None of their segments may go.
TEST(SharedMemoryTracker, SegmentsOfManyCreatorsExitingNormallyAtOnceSurvive) {
  constexpr int kRounds = 6;
  constexpr int kCreators = 24;
  constexpr int kPerCreator = 16;
  constexpr int kBallast = 8000;
  ShmSet ballast;
  for (int i = 0; i < kBallast; ++i) {
    auto shm = SharedMemory::create(1);
    shm.close();
    ballast.add(std::move(shm));
  }
  Load load(2);
  int vanished = 0;
  for (int round = 0; round < kRounds; ++round) {
    auto [parent_end, child_end] = mproc::Pipe();
    std::vector<std::unique_ptr<mproc::Process>> creators;
    for (int i = 0; i < kCreators; ++i) {
      creators.push_back(std::make_unique<mproc::Process>([child_end = child_end]() mutable {
        std::vector<std::string> made;
        for (int k = 0; k < kPerCreator; ++k) made.push_back(SharedMemory::create(4096).name());
        child_end.send(made);
      }));
      creators.back()->start();
    }
    std::vector<std::string> names;
    std::vector<std::unique_ptr<ShmGuard>> guards;
    for (int i = 0; i < kCreators; ++i) {
      ASSERT_TRUE(parent_end.poll(30s));
      for (auto& name : parent_end.recv<std::vector<std::string>>()) {
        guards.push_back(std::make_unique<ShmGuard>(name));
        names.push_back(std::move(name));
      }
    }
    for (auto& creator : creators) {
      creator->join();
      ASSERT_EQ(creator->exitcode(), 0);
    }
    std::this_thread::sleep_for(150ms);  // time for a tracker to (wrongly) act
    for (const auto& name : names) {
      if (!shm_exists(name)) {
        ++vanished;
        continue;
      }
      SharedMemory::attach(name).unlink();  // tracked: the tracker forgets it
    }
  }
  EXPECT_EQ(vanished, 0) << "segments of normally exited creators unlinked";
  ballast.unlink_all();
}

}  // namespace
