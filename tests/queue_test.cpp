// Queue, SimpleQueue and JoinableQueue: Python's semantics (timeouts,
// Empty/Full, close, task_done/join), items of any size, many producers and
// consumers, producers and consumers killed with SIGKILL mid-operation, and
// handles sent to a running process.

#include "mproc/queue.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/event.hpp"
#include "mproc/process.hpp"
#include "support/child.hpp"
#include "support/shared_words.hpp"

namespace {

using mproc::Empty;
using mproc::Full;
using mproc::JoinableQueue;
using mproc::Queue;
using mproc::SimpleQueue;
using mproc::UsageError;
using mproc::testing::ChildProcess;
using mproc::testing::SharedWords;
using namespace std::chrono_literals;

using Clock = std::chrono::steady_clock;

// An item whose content proves it whole: every word derives from the first.
std::vector<std::uint64_t> make_item(std::uint64_t id, std::size_t words) {
  std::vector<std::uint64_t> item(words);
  for (std::size_t i = 0; i < words; ++i) item[i] = id * 1000003 + i;
  return item;
}

bool item_is_whole(const std::vector<std::uint64_t>& item) {
  if (item.empty()) return false;
  std::uint64_t id = item[0] / 1000003;
  for (std::size_t i = 0; i < item.size(); ++i) {
    if (item[i] != id * 1000003 + i) return false;
  }
  return true;
}

// --- one process --------------------------------------------------------------

TEST(QueuePutGet, ReturnsItemsInTheOrderPut) {
  Queue<std::string> queue;
  for (int i = 0; i < 100; ++i) queue.put("item " + std::to_string(i));
  EXPECT_EQ(queue.qsize(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(queue.get(), "item " + std::to_string(i));
  EXPECT_TRUE(queue.empty());
}

TEST(QueueGet, TimesOutWithEmpty) {
  Queue<int> queue;
  auto start = Clock::now();
  EXPECT_THROW(queue.get(100ms), Empty);
  EXPECT_GE(Clock::now() - start, 95ms);
  EXPECT_FALSE(queue.try_get(20ms).has_value());
}

TEST(QueueGetNowait, ThrowsEmptyAtOnceEvenWithATimeout) {
  Queue<int> queue;
  auto start = Clock::now();
  EXPECT_THROW(queue.get_nowait(), Empty);
  EXPECT_THROW(queue.get(false, 10s), Empty);  // block=false ignores the timeout, as in Python
  EXPECT_FALSE(queue.try_get().has_value());
  EXPECT_LT(Clock::now() - start, 1s);
  queue.put(7);
  EXPECT_EQ(queue.get_nowait(), 7);
}

TEST(QueuePut, BoundedQueueTimesOutWithFullAndPutsNothing) {
  Queue<int> queue(2);
  queue.put(1);
  queue.put(2);
  EXPECT_TRUE(queue.full());
  auto start = Clock::now();
  EXPECT_THROW(queue.put(3, 100ms), Full);
  EXPECT_GE(Clock::now() - start, 95ms);
  EXPECT_THROW(queue.put_nowait(3), Full);
  EXPECT_THROW(queue.put(3, false, 10s), Full);
  EXPECT_FALSE(queue.try_put(3));
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_EQ(queue.qsize(), 2u);
  EXPECT_EQ(queue.get(), 1);
  EXPECT_FALSE(queue.full());
  EXPECT_TRUE(queue.try_put(3));
  EXPECT_EQ(queue.get(), 2);
  EXPECT_EQ(queue.get(), 3);
  EXPECT_EQ(queue.maxsize(), 2u);
}

TEST(QueuePut, BlockedPutResumesWhenAnotherProcessGets) {
  Queue<int> queue(1);
  queue.put(1);
  auto child = ChildProcess::fork([&] {
    std::this_thread::sleep_for(100ms);
    return queue.get() == 1 ? 0 : 1;
  });
  auto start = Clock::now();
  queue.put(2, 10s);
  EXPECT_GE(Clock::now() - start, 50ms);
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(queue.get(), 2);
}

TEST(QueueConstructor, RefusesAMaxsizeAboveTheLimit) {
  EXPECT_THROW(Queue<int>(std::size_t{1} << 30), std::invalid_argument);
}

TEST(QueuePut, ItemThatFailsToEncodeThrowsAndTakesNoRoom) {
  // A descriptor cannot travel through shared memory (Python refuses a Lock
  // in a Queue too).
  Queue<std::variant<int, mproc::Event>> queue(1);
  EXPECT_THROW(queue.put(mproc::Event()), mproc::EncodeError);
  EXPECT_EQ(queue.qsize(), 0u);
  queue.put_nowait(5);
  EXPECT_EQ(std::get<int>(queue.get()), 5);
}

TEST(QueueClose, RefusesLaterPutsAndGetsInThisProcessOnly) {
  Queue<int> queue;
  EXPECT_THROW(queue.join_thread(), UsageError);  // Python: only after close()
  queue.put(1);
  Queue<int> copy = queue;
  queue.close();
  EXPECT_THROW(copy.put(2), UsageError);  // Python: ValueError, "Queue is closed"
  EXPECT_THROW((void)copy.get(), UsageError);
  EXPECT_EQ(copy.qsize(), 1u);
  queue.join_thread();
  queue.cancel_join_thread();
  // A child forked afterwards starts with the queue open, as in CPython.
  auto child = ChildProcess::fork([&] {
    if (copy.get() != 1) return 1;
    copy.put(3);
    return 0;
  });
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(copy.qsize(), 1u);
}

TEST(QueueUnbounded, KeepsOrderPastTheRingWithoutBlocking) {
  // Far more items than the ring holds, with gets in between: the items
  // that spill over must still come out first in, first out.
  Queue<int> queue;
  int next_put = 0;
  int next_get = 0;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 20000; ++i) queue.put(next_put++);
    for (int i = 0; i < 7000; ++i) ASSERT_EQ(queue.get(), next_get++);
  }
  EXPECT_EQ(queue.qsize(), static_cast<std::size_t>(next_put - next_get));
  while (next_get < next_put) ASSERT_EQ(queue.get_nowait(), next_get++);
  EXPECT_THROW(queue.get_nowait(), Empty);
}

TEST(QueueItems, OfEverySizeFromOneByteTo256MiBArriveWhole) {
  Queue<std::string> queue;
  std::vector<std::size_t> sizes = {0,    1,         7,         8,           9,          15,
                                    16,   17,        100,       4095,        4096,       4097,
                                    65536, 1 << 20, (1 << 20) + 1, 64 << 20, 256 << 20};
  auto child = ChildProcess::fork([&] {
    for (std::size_t size : sizes) {
      std::string item(size, '\0');
      for (std::size_t i = 0; i < size; i += 4093) item[i] = static_cast<char>('a' + size % 26);
      if (size > 0) item[size - 1] = 'Z';
      queue.put(item);
    }
    return 0;
  });
  for (std::size_t size : sizes) {
    std::string item = queue.get(60s);
    ASSERT_EQ(item.size(), size);
    for (std::size_t i = 0; i + 1 < size; i += 4093) ASSERT_EQ(item[i], static_cast<char>('a' + size % 26)) << size;
    if (size > 0) {
      EXPECT_EQ(item[size - 1], 'Z');
    }
  }
  EXPECT_EQ(child.wait(), 0);
}

// --- Python's "joining processes that use queues" -----------------------------

TEST(QueueUnbounded, ChildThatPut200MiBCanBeJoinedBeforeAnythingIsRead) {
  // CPython's documentation warns that this deadlocks there: the child
  // cannot exit until its feeder thread has flushed everything into the
  // pipe. Here put() has finished when it returns.
  Queue<std::vector<std::uint64_t>> queue;
  constexpr int kItems = 3200;                    // 3200 x 64 KiB = 200 MiB
  constexpr std::size_t kWords = 65536 / 8;
  mproc::Process child([queue]() mutable {
    for (std::uint64_t i = 0; i < kItems; ++i) queue.put(make_item(i, kWords));
  });
  child.start();
  ASSERT_TRUE(child.join(60s)) << "the child could not exit before its items were read";
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_EQ(queue.qsize(), static_cast<std::size_t>(kItems));
  for (int i = 0; i < kItems; ++i) {
    auto item = queue.get(10s);
    ASSERT_EQ(item.size(), kWords);
    ASSERT_TRUE(item_is_whole(item));
    ASSERT_EQ(item[0], static_cast<std::uint64_t>(i) * 1000003);
  }
}

// --- many processes --------------------------------------------------------------

TEST(QueueManyProcesses, FourProducersAndFourConsumersLoseAndDuplicateNothing) {
  constexpr int kProducers = 4, kConsumers = 4;
  constexpr std::size_t kItems = 1'000'000, kPerProducer = kItems / kProducers;
  Queue<std::int64_t> queue;
  // One flag per item, set by the consumer that got it; then the counts.
  SharedWords seen(kItems + 4);
  constexpr std::size_t kDuplicates = kItems, kOutOfOrder = kItems + 1, kGot = kItems + 2;
  std::vector<ChildProcess> children;
  for (int c = 0; c < kConsumers; ++c) {
    children.push_back(ChildProcess::fork([&] {
      std::vector<long> last(kProducers, -1);
      for (;;) {
        std::int64_t got = queue.get(30s);
        if (got < 0) return 0;
        auto item = static_cast<std::size_t>(got);
        std::size_t producer = item / kPerProducer;
        long index = static_cast<long>(item % kPerProducer);
        if (index <= last[producer]) seen[kOutOfOrder]++;
        last[producer] = index;
        if (seen[item].exchange(1) != 0) seen[kDuplicates]++;
        seen[kGot]++;
      }
    }));
  }
  std::vector<ChildProcess> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.push_back(ChildProcess::fork([&, p] {
      for (std::size_t i = 0; i < kPerProducer; ++i) queue.put(static_cast<std::int64_t>(static_cast<std::size_t>(p) * kPerProducer + i));
      return 0;
    }));
  }
  for (auto& producer : producers) EXPECT_EQ(producer.wait(), 0);
  for (int c = 0; c < kConsumers; ++c) queue.put(-1);
  for (auto& child : children) EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(seen[kGot].load(), static_cast<long>(kItems));
  EXPECT_EQ(seen[kDuplicates].load(), 0);
  // Each consumer takes items in queue order, so it sees each producer's in order.
  EXPECT_EQ(seen[kOutOfOrder].load(), 0);
  long missing = 0;
  for (std::size_t i = 0; i < kItems; ++i) missing += seen[i].load() == 0;
  EXPECT_EQ(missing, 0);
}

// Gets every item of `producers` producers that put {producer, 0},
// {producer, 1}, ... `per_producer` times, checking that each producer's
// come in order.
void get_each_producers_items_in_order(Queue<std::pair<int, int>>& queue, int producers, int per_producer) {
  std::vector<int> next(static_cast<std::size_t>(producers), 0);
  for (int n = 0; n < producers * per_producer; ++n) {
    auto [p, i] = queue.get(30s);
    auto& expected = next.at(static_cast<std::size_t>(p));
    ASSERT_EQ(i, expected) << "producer " << p;
    ++expected;
  }
}

TEST(QueueManyProcesses, OneConsumerGetsEachProducersItemsInOrder) {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 50000;
  Queue<std::pair<int, int>> queue;
  std::vector<ChildProcess> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.push_back(ChildProcess::fork([&, p] {
      for (int i = 0; i < kPerProducer; ++i) queue.put({p, i});
      return 0;
    }));
  }
  get_each_producers_items_in_order(queue, kProducers, kPerProducer);
  for (auto& producer : producers) EXPECT_EQ(producer.wait(), 0);
}

TEST(QueueManyProcesses, OneConsumerKeepsEachProducersOrderAcrossTheSpillList) {
  // The consumer starts late, so the producers overflow the ring onto the
  // spill list, and go back to the ring once it has drained.
  constexpr int kProducers = 2;
  constexpr int kPerProducer = 40000;
  Queue<std::pair<int, int>> queue;
  std::vector<ChildProcess> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.push_back(ChildProcess::fork([&, p] {
      for (int i = 0; i < kPerProducer / 2; ++i) queue.put({p, i});
      std::this_thread::sleep_for(100ms);  // the consumer drains the spill list meanwhile
      for (int i = kPerProducer / 2; i < kPerProducer; ++i) queue.put({p, i});
      return 0;
    }));
  }
  std::this_thread::sleep_for(100ms);
  get_each_producers_items_in_order(queue, kProducers, kPerProducer);
  for (auto& producer : producers) EXPECT_EQ(producer.wait(), 0);
}

TEST(QueueHandle, TravelsOverAConnectionToAProcessAlreadyRunning) {
  auto [parent_end, child_end] = mproc::Pipe();
  auto child = ChildProcess::fork([child_end = child_end]() mutable {
    auto [requests, replies] = child_end.recv<std::pair<Queue<std::string>, Queue<std::string>>>();
    for (;;) {
      std::string request = requests.get(10s);
      if (request == "stop") return 0;
      replies.put(request + " done");
    }
  });
  Queue<std::string> requests, replies;
  parent_end.send(std::make_pair(requests, replies));
  for (std::size_t i = 0; i < 100; ++i) requests.put("job " + std::to_string(i) + std::string(i * 100, '.'));
  for (std::size_t i = 0; i < 100; ++i) {
    EXPECT_EQ(replies.get(10s), "job " + std::to_string(i) + std::string(i * 100, '.') + " done");
  }
  requests.put("stop");
  EXPECT_EQ(child.wait(), 0);
}

TEST(QueueHandle, ReceivedAsAQueueOfAnotherTypeIsADecodeError) {
  auto [a, b] = mproc::Pipe();
  a.send(Queue<int>());
  EXPECT_THROW(b.recv<Queue<std::string>>(), mproc::DecodeError);
  a.send(Queue<int>());
  EXPECT_THROW(b.recv<SimpleQueue<int>>(), mproc::DecodeError);
}

// --- crashes ---------------------------------------------------------------------

// Kills `victim` after a random delay of up to `max_delay`.
void kill_at_random(ChildProcess& victim, std::mt19937& random, std::chrono::microseconds max_delay) {
  std::this_thread::sleep_for(std::chrono::microseconds(random() % static_cast<std::uint64_t>(max_delay.count())));
  ::kill(victim.pid(), SIGKILL);
  EXPECT_EQ(victim.wait(), -SIGKILL);
}

// Makes this process die of SIGKILL while it holds a claim of `kind`.
void die_holding_claims(mproc::detail::QueueClaim kind) {
  static mproc::detail::QueueClaim wanted;
  wanted = kind;
  mproc::detail::queue_claim_hook = [](mproc::detail::QueueClaim claim) {
    if (claim == wanted) ::raise(SIGKILL);
  };
}

TEST(QueueCrash, ProducerKilledHoldingItsClaimIsPassedOverWithoutItsItem) {
  // Killed between claiming a slot and publishing the item in it: once for
  // an item that travels in the slot, once for one in a block.
  for (std::size_t words : {1u, 5000u}) {
    Queue<std::vector<std::uint64_t>> queue;
    auto victim = ChildProcess::fork([&] {
      die_holding_claims(mproc::detail::QueueClaim::writing);
      queue.put(make_item(1, words));
      return 0;
    });
    EXPECT_EQ(victim.wait(), -SIGKILL);
    EXPECT_EQ(queue.qsize(), 1u);  // claimed, never finished
    queue.put(make_item(2, words));
    auto start = Clock::now();
    auto item = queue.get(5s);
    EXPECT_LT(Clock::now() - start, 2s);
    EXPECT_EQ(item, make_item(2, words)) << "the dead producer's partial item was delivered";
    EXPECT_THROW(queue.get(200ms), Empty);
    EXPECT_EQ(queue.qsize(), 0u);
  }
}

TEST(QueueCrash, ConsumerKilledHoldingItsClaimDoesNotStopProducersOnTheNextLap) {
  // A bounded queue waits for the slot the dead consumer held when the ring
  // comes round to it; that slot must be taken back.
  for (std::size_t words : {1u, 5000u}) {
    Queue<std::vector<std::uint64_t>> queue(1);
    queue.put(make_item(1, words));
    auto victim = ChildProcess::fork([&] {
      die_holding_claims(mproc::detail::QueueClaim::reading);
      (void)queue.get();
      return 0;
    });
    EXPECT_EQ(victim.wait(), -SIGKILL);
    auto start = Clock::now();
    for (std::uint64_t i = 2; i < 300; ++i) {  // several laps of the ring
      queue.put(make_item(i, words), 5s);
      ASSERT_EQ(queue.get(5s), make_item(i, words));
    }
    EXPECT_LT(Clock::now() - start, 5s);
  }
}

TEST(QueueCrash, ProducerKilledWhileSpillingLeavesTheSpillListWhole) {
  // Past the ring, items go onto a list under a lock; the victim dies with
  // the lock held, its item linked in but the list's tail not yet moved.
  Queue<int> queue;
  int next = 0;
  while (next < 5000) queue.put(next++);  // more than the ring holds
  auto victim = ChildProcess::fork([&] {
    die_holding_claims(mproc::detail::QueueClaim::spilling);
    queue.put(5000);
    return 0;
  });
  EXPECT_EQ(victim.wait(), -SIGKILL);
  ++next;  // linked before the victim died: it is whole and counts
  while (next < 6000) queue.put(next++);
  for (int i = 0; i < next; ++i) ASSERT_EQ(queue.get(5s), i);
  EXPECT_THROW(queue.get_nowait(), Empty);
}

TEST(QueueCrash, SecondDeadClaimOnASlotDoesNotFreeTheFirstOnesBlockAgain) {
  // A dead consumer's claim is dropped (its block freed); on the next lap a
  // producer dies holding the same slot before saying what it holds. The
  // block named in the slot is the first claim's: freeing it again would
  // hand one block to two items.
  Queue<std::string> queue(64);  // a ring of 64 slots
  queue.put(std::string(1000, 'x'));
  auto reader = ChildProcess::fork([&] {
    die_holding_claims(mproc::detail::QueueClaim::reading);
    (void)queue.get();
    return 0;
  });
  ASSERT_EQ(reader.wait(), -SIGKILL);
  for (int i = 1; i < 64; ++i) {
    queue.put("s");
    ASSERT_EQ(queue.get(), "s");
  }
  auto writer = ChildProcess::fork([&] {
    die_holding_claims(mproc::detail::QueueClaim::writing);
    queue.put(std::string(1000, 'y'));
    return 0;
  });
  ASSERT_EQ(writer.wait(), -SIGKILL);
  EXPECT_FALSE(queue.try_get(300ms).has_value());
  queue.put(std::string(1000, 'a'));
  queue.put(std::string(1000, 'b'));
  EXPECT_EQ(queue.get(1s), std::string(1000, 'a'));
  EXPECT_EQ(queue.get(1s), std::string(1000, 'b'));
}

TEST(QueueCrash, ConsumerPollingTwoQueuesDropsDeadClaimsInBoth) {
  // Each handle watches its own dead claims: a thread that alternates
  // between queues must still get round to dropping them.
  Queue<int> a, b;
  for (Queue<int>* queue : {&a, &b}) {
    auto victim = ChildProcess::fork([&] {
      die_holding_claims(mproc::detail::QueueClaim::writing);
      queue->put(1);
      return 0;
    });
    ASSERT_EQ(victim.wait(), -SIGKILL);
    queue->put(2);
  }
  std::optional<int> from_a, from_b;
  auto start = Clock::now();
  while ((!from_a || !from_b) && Clock::now() - start < 5s) {
    if (!from_a) from_a = a.try_get();
    if (!from_b) from_b = b.try_get();
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(from_a, 2);
  EXPECT_EQ(from_b, 2);
}

TEST(QueueCrash, ItemLinkedIntoAnEmptySpillListByADyingProducerIsSeen) {
  JoinableQueue<int> queue;
  for (int i = 0; i < 4096; ++i) queue.put(i);  // exactly fills the ring
  auto victim = ChildProcess::fork([&] {
    die_holding_claims(mproc::detail::QueueClaim::spilling);
    queue.put(4096);
    return 0;
  });
  ASSERT_EQ(victim.wait(), -SIGKILL);
  for (int i = 0; i <= 4096; ++i) {
    ASSERT_EQ(queue.get(2s), i);
    queue.task_done();
  }
  EXPECT_TRUE(queue.join(1s));
}

TEST(QueueCrash, ProducersKilledMidPutNeverWedgeTheQueueNorDeliverPartialItems) {
  // Victims put items of every size (inline, in a block) in a loop and are
  // killed at random moments; a well-behaved producer's items must all
  // arrive, and every item anyone gets must be whole.
  Queue<std::vector<std::uint64_t>> queue(64);
  constexpr std::uint64_t kGood = 3000;
  auto consumer = ChildProcess::fork([&] {
    std::uint64_t good = 0;
    while (good < kGood) {
      auto item = queue.get(20s);
      if (!item_is_whole(item)) return 1;
      good += item[0] / 1000003 >= 1'000'000'000;
    }
    return 0;
  });
  auto good_producer = ChildProcess::fork([&] {
    for (std::uint64_t i = 0; i < kGood; ++i) {
      queue.put(make_item(1'000'000'000 + i, 1 + i % 3000), 20s);
      std::this_thread::sleep_for(200us);
    }
    return 0;
  });
  std::mt19937 random(12345);
  for (int kill = 0; kill < 40; ++kill) {
    auto victim = ChildProcess::fork([&, kill] {
      std::mt19937 sizes(static_cast<std::uint32_t>(kill));
      for (std::uint64_t i = 0;; ++i) {
        queue.put(make_item(static_cast<std::uint64_t>(kill) * 1'000'000 + i + 1, 1 + sizes() % 2000));
      }
      return 0;
    });
    kill_at_random(victim, random, 20ms);
  }
  EXPECT_EQ(good_producer.wait(), 0);
  EXPECT_EQ(consumer.wait(), 0) << "items lost or partial, or the queue wedged";
  // Still usable afterwards.
  queue.put(make_item(5, 10));
  std::optional<std::vector<std::uint64_t>> item;
  while ((item = queue.try_get(1s)) && item->size() != 10) {
  }
  ASSERT_TRUE(item.has_value());
  EXPECT_TRUE(item_is_whole(*item));
}

TEST(QueueCrash, ConsumersKilledMidGetDoNotWedgeTheQueue) {
  // A small bounded queue: a slot left claimed by a dead consumer would
  // stop every producer on the ring's next lap.
  Queue<std::vector<std::uint64_t>> queue(4);
  SharedWords stop(1);
  auto producer = ChildProcess::fork([&] {
    for (std::uint64_t i = 0; stop[0].load() == 0; ++i) queue.put(make_item(i + 1, 1 + i % 1500), 20s);
    queue.put({}, 20s);
    return 0;
  });
  std::mt19937 random(777);
  for (int kill = 0; kill < 40; ++kill) {
    auto victim = ChildProcess::fork([&] {
      for (;;) (void)queue.get(20s);
      return 0;
    });
    kill_at_random(victim, random, 10ms);
  }
  stop[0] = 1;
  // What the victims left, then the end marker, reach a survivor.
  auto survivor = ChildProcess::fork([&] {
    for (;;) {
      auto item = queue.get(20s);
      if (item.empty()) return 0;
      if (!item_is_whole(item)) return 1;
    }
  });
  EXPECT_EQ(survivor.wait(), 0);
  EXPECT_EQ(producer.wait(), 0);
}

// --- SimpleQueue -----------------------------------------------------------------

TEST(SimpleQueue, CarriesItemsBetweenProcessesAndRefusesUseAfterClose) {
  SimpleQueue<std::string> queue;
  EXPECT_TRUE(queue.empty());
  auto child = ChildProcess::fork([&] {
    for (int i = 0; i < 1000; ++i) queue.put(std::to_string(i));
    return 0;
  });
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(queue.get(), std::to_string(i));
  EXPECT_EQ(child.wait(), 0);
  EXPECT_TRUE(queue.empty());
  queue.close();
  EXPECT_THROW(queue.put("x"), UsageError);
  EXPECT_THROW(queue.get(), UsageError);
  EXPECT_THROW((void)queue.empty(), UsageError);
}

// --- JoinableQueue ---------------------------------------------------------------

TEST(JoinableQueueTaskDone, CalledMoreOftenThanPutIsAnError) {
  JoinableQueue<int> queue;
  EXPECT_THROW(queue.task_done(), UsageError);
  queue.put(1);
  EXPECT_EQ(queue.get(), 1);
  queue.task_done();
  EXPECT_THROW(queue.task_done(), UsageError);
  queue.join();  // nothing unfinished
}

TEST(JoinableQueueJoin, ReturnsOnceEveryItemIsDoneAcrossProcesses) {
  JoinableQueue<int> queue;
  SharedWords processed(1);
  std::vector<ChildProcess> workers;
  for (int w = 0; w < 2; ++w) {
    workers.push_back(ChildProcess::fork([&] {
      for (;;) {
        int item = queue.get(20s);
        if (item < 0) {
          queue.task_done();
          return 0;
        }
        std::this_thread::sleep_for(1ms);
        processed[0]++;
        queue.task_done();
      }
    }));
  }
  for (int i = 0; i < 200; ++i) queue.put(i);
  EXPECT_FALSE(queue.join(10ms));
  queue.join();
  EXPECT_EQ(processed[0].load(), 200);
  queue.put(-1);
  queue.put(-1);
  for (auto& worker : workers) EXPECT_EQ(worker.wait(), 0);
  EXPECT_TRUE(queue.join(0ms));
}

TEST(JoinableQueuePut, ProducerKilledWhileWaitingForRoomLeavesNothingUnfinished) {
  JoinableQueue<int> queue(1);
  queue.put(1);
  auto producer = ChildProcess::fork([&] {
    queue.put(2);  // waits: the queue is full
    return 0;
  });
  std::this_thread::sleep_for(200ms);
  ::kill(producer.pid(), SIGKILL);
  ASSERT_EQ(producer.wait(), -SIGKILL);
  EXPECT_EQ(queue.get(), 1);
  queue.task_done();
  EXPECT_FALSE(queue.try_get(100ms).has_value());
  EXPECT_TRUE(queue.join(2s)) << "join() waits for an item that was never put";
}

TEST(JoinableQueueTaskDone, ExtraCallIsAnErrorWhileAnotherProcessWaitsToPut) {
  JoinableQueue<int> queue(1);
  queue.put(1);
  auto producer = ChildProcess::fork([&] { return queue.try_put(2, 300ms) ? 1 : 0; });  // times out
  std::this_thread::sleep_for(100ms);
  queue.task_done();
  EXPECT_THROW(queue.task_done(), UsageError);
  ASSERT_EQ(producer.wait(), 0);
  EXPECT_EQ(queue.get(), 1);
  queue.put(3);
  EXPECT_FALSE(queue.join(100ms)) << "join() returned with an item neither got nor done";
}

TEST(JoinableQueuePut, FailedPutLeavesNothingUnfinished) {
  JoinableQueue<int> queue(1);
  queue.put(1);
  EXPECT_THROW(queue.put_nowait(2), Full);
  EXPECT_EQ(queue.get(), 1);
  queue.task_done();
  EXPECT_TRUE(queue.join(1s));
}

}  // namespace
