// Event across processes: set, clear, wait with and without timeouts,
// travel to a running process.

#include "mproc/event.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "mproc/connection.hpp"
#include "support/child.hpp"

namespace {

using mproc::Event;
using mproc::testing::ChildProcess;
using namespace std::chrono_literals;

TEST(EventWait, ReturnsFalseAfterTheTimeoutAndTrueOnceSet) {
  Event event;
  EXPECT_FALSE(event.is_set());
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(event.wait(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 45ms);
  event.set();
  EXPECT_TRUE(event.is_set());
  EXPECT_TRUE(event.wait());
  EXPECT_TRUE(event.wait(0ms));
  event.clear();
  EXPECT_FALSE(event.wait(0ms));
}

TEST(EventSet, WakesEveryWaitingProcess) {
  Event event;
  std::vector<ChildProcess> children;
  for (int i = 0; i < 3; ++i) {
    children.push_back(ChildProcess::fork([&] { return event.wait(10s) ? 0 : 1; }));
  }
  std::this_thread::sleep_for(30ms);
  event.set();
  for (auto& child : children) EXPECT_EQ(child.wait(), 0);
}

TEST(EventHandle, PingPongsWithAProcessThatWasAlreadyRunning) {
  auto [parent_end, child_end] = mproc::Pipe();
  auto child = ChildProcess::fork([child_end = child_end]() mutable {
    auto [ping, pong] = child_end.recv<std::pair<Event, Event>>();
    for (int i = 0; i < 100; ++i) {
      if (!ping.wait(10s)) return 1;
      ping.clear();
      pong.set();
    }
    return 0;
  });
  Event ping, pong;
  parent_end.send(std::make_pair(ping, pong));
  for (int i = 0; i < 100; ++i) {
    ping.set();
    ASSERT_TRUE(pong.wait(10s)) << i;
    pong.clear();
  }
  EXPECT_EQ(child.wait(), 0);
}

}  // namespace
