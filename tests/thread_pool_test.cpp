// ThreadPool: Pool's interface with threads; any callable and any result
// type, nothing encoded.

#include "mproc/thread_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using mproc::ThreadPool;
using namespace std::chrono_literals;

TEST(ThreadPoolApply, TakesCapturingLambdasAndMoveOnlyResults) {
  ThreadPool pool(2);
  int base = 40;
  EXPECT_EQ(pool.apply([&base](int x) { return base + x; }, 2), 42);
  auto owned = pool.apply_async([] { return std::make_unique<std::string>("not encodable"); });
  owned.wait();
  EXPECT_TRUE(owned.successful());
  std::unique_ptr<std::string> taken = owned.get();
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(*taken, "not encodable");
  EXPECT_EQ(*pool.apply([] { return std::make_unique<int>(5); }), 5);
  std::function<int()> f = [] { return 7; };
  EXPECT_EQ(pool.apply(f), 7);
}

TEST(ThreadPoolApply, RunsOnAnotherThreadAndRethrowsAsIs) {
  ThreadPool pool(1);
  EXPECT_NE(pool.apply([] { return std::this_thread::get_id(); }), std::this_thread::get_id());
  struct Local : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  EXPECT_THROW(pool.apply([]() -> int { throw Local("mine"); }), Local);  // no registration needed
}

TEST(ThreadPoolAsync, CallbacksGetTheResultOrTheError) {
  ThreadPool pool(2);
  std::atomic<int> sum{0};
  auto ok = pool.apply_async([](int x) { return x * 2; }, std::tuple<int>(21), [&](const int& v) { sum += v; });
  auto bad = pool.apply_async([](int) -> int { throw std::out_of_range("x"); }, std::tuple<int>(0),
                              [&](const int&) { sum += 1000; }, [&](std::exception_ptr) { sum += 1; });
  EXPECT_EQ(ok.get(), 42);
  bad.wait();
  EXPECT_EQ(sum.load(), 43);
  EXPECT_THROW(bad.get(), std::out_of_range);
  EXPECT_THROW(pool.apply_async([] { std::this_thread::sleep_for(300ms); }).get(10ms), mproc::TimeoutError);
}

TEST(ThreadPoolMap, KeepsOrderHonoursChunksizeAndStarmapUnpacks) {
  ThreadPool pool(3);
  std::string suffix = "!";
  auto out = pool.map([&suffix](int x) { return std::to_string(x) + suffix; }, std::views::iota(0, 100), 7);
  ASSERT_EQ(out.size(), 100u);
  for (std::size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], std::to_string(i) + "!");
  EXPECT_TRUE(pool.map([](int x) { return x; }, std::vector<int>{}).empty());
  auto products = pool.starmap([](int a, int b) { return a * b; }, std::vector<std::pair<int, int>>{{2, 3}, {4, 5}});
  EXPECT_EQ(products, (std::vector<int>{6, 20}));
  EXPECT_THROW(pool.map([](int x) { return x == 5 ? throw std::domain_error("5") : x; }, std::views::iota(0, 10)),
               std::domain_error);
}

TEST(ThreadPoolImap, IsLazyOrderedAndGoesOnAfterAnError) {
  ThreadPool pool(2);
  std::atomic<long> read{0};
  auto input = std::views::iota(0) | std::views::transform([&read](int i) {
                 ++read;
                 return i;
               });
  auto results = pool.imap([](int x) { return x == 3 ? throw std::invalid_argument("3") : x; }, input);
  std::vector<int> got;
  for (auto it = results.begin(); got.size() < 100; ++it) {
    try {
      got.push_back(*it);
    } catch (const std::invalid_argument&) {
      got.push_back(-1);
    }
  }
  EXPECT_EQ(got[2], 2);
  EXPECT_EQ(got[3], -1);
  EXPECT_EQ(got[4], 4);
  EXPECT_LE(read.load(), 100 + 512);  // a bounded window ahead of what was consumed
  std::multiset<int> unordered;
  for (int x : pool.imap_unordered([](int x) { return x; }, std::vector<int>{1, 2, 3})) unordered.insert(x);
  EXPECT_EQ(unordered, (std::multiset<int>{1, 2, 3}));
}

TEST(ThreadPoolLifecycle, CloseJoinAndTerminate) {
  ThreadPool pool(2);
  auto slow = pool.apply_async([] {
    std::this_thread::sleep_for(100ms);
    return 1;
  });
  EXPECT_THROW(pool.join(), mproc::UsageError);
  pool.close();
  EXPECT_THROW(pool.apply_async([] { return 0; }), mproc::UsageError);
  pool.join();
  EXPECT_EQ(slow.get(), 1);

  ThreadPool busy(1);
  auto running = busy.apply_async([] {
    std::this_thread::sleep_for(200ms);
    return 1;
  });
  std::this_thread::sleep_for(50ms);
  auto queued = busy.apply_async([] { return 2; });
  busy.terminate();
  EXPECT_THROW(queued.get(), mproc::BrokenProcessPool);  // never ran
  busy.join();
  EXPECT_EQ(running.get(), 1);  // a thread cannot be killed: it finished
}

TEST(ThreadPoolJoin, FromItsOwnTaskIsAUsageErrorNotAHang) {
  ThreadPool pool(2);
  auto r = pool.apply_async([&pool] {
    pool.close();
    try {
      pool.join();
      return 0;
    } catch (const mproc::UsageError&) {
      return 1;
    }
  });
  EXPECT_EQ(r.get(), 1);
}

TEST(ThreadPoolDestructor, RunInItsOwnTaskLetsTheThreadsFinish) {
  auto holder = std::make_shared<std::unique_ptr<ThreadPool>>(std::make_unique<ThreadPool>(2));
  auto r = (*holder)->apply_async([holder] {
    holder->reset();  // the last reference: from one of its own threads
    return 7;
  });
  holder.reset();
  EXPECT_EQ(r.get(), 7);
}

TEST(ThreadPoolImap, StartedBeforeCloseYieldsEverythingAfterJoin) {
  ThreadPool pool(2);
  auto results = pool.imap([](int x) { return x; }, std::views::iota(0, 3000));
  pool.close();
  pool.join();
  long count = 0;
  for (int value : results) EXPECT_EQ(value, count++);
  EXPECT_EQ(count, 3000);
}

TEST(ThreadPoolInitializer, RunsOnEachThreadFirst) {
  std::atomic<int> runs{0};
  {
    ThreadPool pool(3, [&runs] { ++runs; });
    pool.close();
    pool.join();
  }
  EXPECT_EQ(runs.load(), 3);
}

}  // namespace
