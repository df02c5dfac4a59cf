// The os layer against the real kernel.

#include <fcntl.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <string>
#include <vector>

#include "common/raise.hpp"
#include "os/io.hpp"
#include "os/elf.hpp"
#include "os/futex.hpp"
#include "os/memory.hpp"
#include "os/modules.hpp"
#include "os/pidfd.hpp"
#include "os/poll.hpp"
#include "os/process.hpp"
#include "os/random.hpp"
#include "os/socket.hpp"
#include "support/child.hpp"
#include "support/expect.hpp"

namespace {

using mproc::UniqueFd;
using mproc::testing::ChildProcess;

bool is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

TEST(OsUniqueFd, ClosesOnDestructionAndReset) {
  auto pair = mproc::os::socket_pair();
  ASSERT_TRUE(pair.ok());
  int first = pair.value.first.get();
  int second = pair.value.second.get();
  pair.value.first.reset();
  EXPECT_FALSE(is_open(first));
  { UniqueFd moved = std::move(pair.value.second); }
  EXPECT_FALSE(is_open(second));
}

TEST(OsUniqueFd, DupIsCloseOnExecAndIndependent) {
  auto pair = mproc::os::socket_pair();
  ASSERT_TRUE(pair.ok());
  UniqueFd copy = pair.value.first.dup();
  EXPECT_NE(copy.get(), pair.value.first.get());
  EXPECT_TRUE(fcntl(copy.get(), F_GETFD) & FD_CLOEXEC);
  pair.value.first.reset();
  const std::byte byte[] = {std::byte{1}};
  EXPECT_FALSE(mproc::os::write_all(copy.get(), byte));  // still connected
}

TEST(OsIo, MebibytesCrossASocketInOrder) {
  auto pair = mproc::os::socket_pair();
  ASSERT_TRUE(pair.ok());
  constexpr std::size_t kSize = 4 << 20;
  int writer_fd = pair.value.second.get();
  auto writer = ChildProcess::fork([writer_fd] {
    std::vector<std::byte> data(kSize);
    for (std::size_t i = 0; i < kSize; ++i) data[i] = static_cast<std::byte>(i * 7);
    return mproc::os::write_all(writer_fd, data) ? 1 : 0;
  });
  pair.value.second.reset();
  std::vector<std::byte> got(kSize + 1);
  auto read = mproc::os::read_full(pair.value.first.get(), got);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read.value, kSize);  // short: the writer closed after kSize bytes
  for (std::size_t i = 0; i < kSize; ++i) {
    ASSERT_EQ(got[i], static_cast<std::byte>(i * 7)) << "at " << i;
  }
  EXPECT_EQ(writer.wait(), 0);
}

TEST(OsSocket, DescriptorsArriveWorking) {
  auto channel = mproc::os::socket_pair();
  auto a = mproc::os::socket_pair();
  auto b = mproc::os::socket_pair();
  ASSERT_TRUE(channel.ok() && a.ok() && b.ok());
  int passed[] = {a.value.first.get(), b.value.first.get()};
  const std::byte payload[] = {std::byte{'m'}};
  ASSERT_FALSE(mproc::os::send_with_fds(channel.value.first.get(), payload, passed));

  std::byte buffer[4];
  UniqueFd received[4];
  std::size_t count = 0;
  auto got = mproc::os::receive_with_fds(channel.value.second.get(), buffer, received, count);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value, 1u);
  ASSERT_EQ(count, 2u);
  for (std::size_t i = 0; i < count; ++i) {
    EXPECT_TRUE(fcntl(received[i].get(), F_GETFD) & FD_CLOEXEC);
    const std::byte marker[] = {static_cast<std::byte>('0' + i)};
    ASSERT_FALSE(mproc::os::write_all(received[i].get(), marker));
  }
  std::byte from_a[1], from_b[1];
  ASSERT_TRUE(mproc::os::read_full(a.value.second.get(), from_a).ok());
  ASSERT_TRUE(mproc::os::read_full(b.value.second.get(), from_b).ok());
  EXPECT_EQ(from_a[0], std::byte{'0'});
  EXPECT_EQ(from_b[0], std::byte{'1'});
}

TEST(OsProcess, ExitCodesAreReportedAsPythonDoes) {
  EXPECT_EQ(ChildProcess::fork([] { return 7; }).wait(), 7);
  auto sleeper = ChildProcess::fork([] {
    for (;;) pause();
    return 0;
  });
  ASSERT_FALSE(mproc::os::kill(sleeper.pid(), SIGTERM));
  EXPECT_EQ(sleeper.wait(), -SIGTERM);
}

TEST(OsProcess, SpawningAMissingProgramIsAnErrorNotADeadChild) {
  char* argv[] = {const_cast<char*>("missing"), nullptr};
  auto started = mproc::os::spawn("/nonexistent/program", argv, {});
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error.code, std::error_code(ENOENT, std::system_category()));
  EXPECT_STREQ(started.error.call, "posix_spawn");
}

TEST(OsProcess, SystemErrorsNameTheCallAndTheContext) {
  mproc::testing::expect_throw_containing<std::system_error>(
      [] { mproc::detail::check(mproc::os::kill(-99999999, 0), "signalling nobody"); },
      "kill (signalling nobody)");
}

TEST(OsPidfd, ReapsOnceSignalsAndBecomesReadableAtTheEnd) {
  auto child = ChildProcess::fork([] {
    for (;;) pause();
    return 0;
  });
  auto pidfd = mproc::os::pidfd_open(child.pid());
  ASSERT_TRUE(pidfd.ok());
  auto running = mproc::os::reap(pidfd.value.get(), false);
  ASSERT_TRUE(running.ok());
  EXPECT_FALSE(running.value.has_value());
  mproc::os::PollEntry entry{pidfd.value.get()};
  EXPECT_EQ(mproc::os::poll_readable({&entry, 1}, std::chrono::milliseconds(10)).value, 0);
  ASSERT_FALSE(mproc::os::pidfd_send_signal(pidfd.value.get(), SIGTERM));
  EXPECT_EQ(mproc::os::poll_readable({&entry, 1}, std::nullopt).value, 1);
  auto reaped = mproc::os::reap(pidfd.value.get(), true);
  ASSERT_TRUE(reaped.ok());
  EXPECT_EQ(reaped.value, -SIGTERM);
  auto again = mproc::os::reap(pidfd.value.get(), false);
  EXPECT_EQ(again.error.code, std::errc::no_child_process);
  (void)child.release_after_reap();
}

TEST(OsPoll, OneShotEpollWatchReportsOnceUntilRearmed) {
  auto epoll = mproc::os::epoll_create();
  auto pair = mproc::os::socket_pair();
  ASSERT_TRUE(epoll.ok() && pair.ok());
  ASSERT_FALSE(mproc::os::epoll_watch(epoll.value.get(), pair.value.first.get(), 77, true));
  const std::byte byte[] = {std::byte{1}};
  ASSERT_FALSE(mproc::os::write_all(pair.value.second.get(), byte));
  std::uint64_t keys[4];
  auto first = mproc::os::epoll_wait(epoll.value.get(), keys, std::chrono::milliseconds(1000));
  ASSERT_EQ(first.value, 1u);
  EXPECT_EQ(keys[0], 77u);
  EXPECT_EQ(mproc::os::epoll_wait(epoll.value.get(), keys, std::chrono::milliseconds(10)).value, 0u);
  ASSERT_FALSE(mproc::os::epoll_rearm(epoll.value.get(), pair.value.first.get(), 78));
  auto again = mproc::os::epoll_wait(epoll.value.get(), keys, std::chrono::milliseconds(1000));
  ASSERT_EQ(again.value, 1u);
  EXPECT_EQ(keys[0], 78u);
}

int a_function_in_this_binary() { return 1; }

TEST(OsElf, FunctionSymbolsOfThisBinaryIncludeItsFunctions) {
  auto symbols = mproc::os::read_function_symbols(mproc::os::kSelfExe);
  ASSERT_TRUE(symbols.ok());
  EXPECT_TRUE(symbols.value.has_symtab);
  mproc::os::ModuleGeneration generation;
  auto main_module = mproc::os::loaded_modules(generation).front();
  EXPECT_EQ(symbols.value.build_id, main_module.build_id);
  auto offset = reinterpret_cast<std::uintptr_t>(&a_function_in_this_binary) - main_module.base;
  EXPECT_TRUE(std::binary_search(symbols.value.starts.begin(), symbols.value.starts.end(), offset));
  EXPECT_FALSE(std::binary_search(symbols.value.starts.begin(), symbols.value.starts.end(), offset + 1));
  auto not_elf = mproc::os::read_function_symbols("/proc/self/status");
  EXPECT_FALSE(not_elf.ok());
}

TEST(OsModules, MainExecutableComesFirstWithBuildIdAndCode) {
  mproc::os::ModuleGeneration generation;
  auto modules = mproc::os::loaded_modules(generation);
  ASSERT_FALSE(modules.empty());
  EXPECT_EQ(modules[0].path, "");
  EXPECT_GE(modules[0].build_id.size(), 8u);
  auto code = reinterpret_cast<std::uintptr_t>(&a_function_in_this_binary);
  bool found = false;
  for (const auto& segment : modules[0].segments) {
    if (code >= segment.start && code < segment.end) found = segment.executable;
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(generation, mproc::os::module_generation());
}

TEST(OsFutex, WaitTimesOutWhileTheWordHoldsTheValueAndNotOtherwise) {
  mproc::os::FutexWord word{7};
  auto timed_out = mproc::os::futex_wait(word, 7, std::chrono::milliseconds(10));
  ASSERT_TRUE(timed_out.ok());
  EXPECT_FALSE(timed_out.value);
  auto changed = mproc::os::futex_wait(word, 8, std::chrono::seconds(10));
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(changed.value);  // the word did not hold 8: no sleep at all
  EXPECT_EQ(mproc::os::futex_wake(word, 1), 0);
}

TEST(OsProcessAlive, FalseForAZombieAndForAReapedChild) {
  EXPECT_TRUE(mproc::os::process_alive(mproc::os::current_pid()));
  auto child = ChildProcess::fork([] { return 0; });
  // Not reaped yet: a zombie, which is not alive.
  bool seen_dead = false;
  for (int i = 0; i < 2000 && !seen_dead; ++i) {
    seen_dead = !mproc::os::process_alive(child.pid());
    if (!seen_dead) ::usleep(1000);
  }
  EXPECT_TRUE(seen_dead);
  int pid = child.pid();
  EXPECT_EQ(child.wait(), 0);
  EXPECT_FALSE(mproc::os::process_alive(pid));
}

TEST(OsMemory, AMemoryFileIsSharedThroughEveryMapping) {
  auto file = mproc::os::memory_file("test", 8192);
  ASSERT_TRUE(file.ok());
  auto size = mproc::os::file_size(file.value.get());
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(size.value, 8192u);
  auto first = mproc::os::map_shared(file.value.get(), 8192);
  auto second = mproc::os::map_shared(file.value.get(), 8192);
  ASSERT_TRUE(first.ok() && second.ok());
  first.value.data()[4096] = std::byte{42};
  EXPECT_EQ(second.value.data()[4096], std::byte{42});
}

TEST(OsMemory, NamedSegmentsRefuseATakenNameAndAMissingOne) {
  auto random = mproc::os::random_u64();
  ASSERT_TRUE(random.ok());
  std::string name = "/mproc-os-test-" + std::to_string(random.value);
  auto created = mproc::os::shm_create(name, 4096);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(mproc::os::shm_create(name, 4096).error.code, std::errc::file_exists);
  EXPECT_TRUE(mproc::os::shm_attach(name).ok());
  EXPECT_FALSE(mproc::os::shm_remove(name));
  EXPECT_EQ(mproc::os::shm_attach(name).error.code, std::errc::no_such_file_or_directory);
  EXPECT_EQ(mproc::os::shm_remove(name).code, std::errc::no_such_file_or_directory);
}

}  // namespace
