// ShareableList: values of every type, fixed slot capacities, type changes,
// validation of what attach() finds, and travel by name to other processes.

#include "mproc/shareable_list.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>

#include "mproc/connection.hpp"
#include "mproc/errors.hpp"
#include "mproc/process.hpp"
#include "support/child.hpp"
#include "support/shm_guard.hpp"

namespace {

using mproc::Bytes;
using mproc::ShareableList;
using mproc::ShareableValue;
using mproc::SharedMemory;
using mproc::testing::ChildProcess;
using mproc::testing::ShmGuard;
using mproc::testing::unique_shm_name;
using namespace std::chrono_literals;
using namespace std::string_view_literals;

Bytes bytes_of(std::string_view text) {
  Bytes bytes(text.size());
  std::memcpy(bytes.data(), text.data(), text.size());
  return bytes;
}

TEST(ShareableListCreate, HoldsEveryTypeAndAnAttachedListReadsThemBack) {
  ShareableList list({42, -7LL, 2.5, true, false, "hello", std::string(), bytes_of("raw\0x"sv), nullptr});
  ShmGuard guard(list.shm().name());
  ASSERT_EQ(list.size(), 9u);
  auto other = ShareableList::attach(list.shm().name());
  ASSERT_EQ(other.size(), 9u);
  for (const ShareableList* l : {&list, &other}) {
    EXPECT_EQ(std::get<std::int64_t>(l->get(0)), 42);
    EXPECT_EQ(std::get<std::int64_t>((*l)[1]), -7);
    EXPECT_EQ(std::get<double>(l->get(2)), 2.5);
    EXPECT_EQ(std::get<bool>(l->get(3)), true);
    EXPECT_EQ(std::get<bool>(l->get(4)), false);
    EXPECT_EQ(std::get<std::string>(l->get(5)), "hello");
    EXPECT_EQ(std::get<std::string>(l->get(6)), "");
    EXPECT_EQ(std::get<Bytes>(l->get(7)), bytes_of("raw\0x"sv));
    EXPECT_TRUE(l->get(8).is_none());
  }
  other.set(0, 43);
  EXPECT_EQ(list[0], ShareableValue(43));
  list.shm().unlink();
}

TEST(ShareableListCreate, WithAGivenNameAndSlotCapacitiesAsPython) {
  std::string name = unique_shm_name("list");
  ShmGuard guard(name);
  ShareableList list({1, "", "12345678", "123456789", bytes_of("ab")}, name);
  EXPECT_EQ(list.shm().name(), name);
  // Python: 8 * (len // 8 + 1), so a multiple of 8 gets 8 more.
  EXPECT_EQ(list.capacity(0), 8u);
  EXPECT_EQ(list.capacity(1), 8u);
  EXPECT_EQ(list.capacity(2), 16u);
  EXPECT_EQ(list.capacity(3), 16u);
  EXPECT_EQ(list.capacity(4), 8u);
  EXPECT_EQ(list.format(), "q8s16s16s8p");
  EXPECT_THROW(ShareableList({1}, name), mproc::FileExistsError);
  list.shm().unlink();
}

TEST(ShareableListSet, LongerStringThrowsLengthErrorAndKeepsTheOldValue) {
  ShareableList list({"short", bytes_of("abc")});
  ShmGuard guard(list.shm().name());
  EXPECT_THROW(list.set(0, "this is longer than eight"), std::length_error);
  EXPECT_EQ(std::get<std::string>(list[0]), "short");
  EXPECT_THROW(list.set(1, Bytes(9)), std::length_error);
  EXPECT_EQ(std::get<Bytes>(list[1]), bytes_of("abc"));
  list.set(0, "exactly8");
  EXPECT_EQ(std::get<std::string>(list[0]), "exactly8");
  list.shm().unlink();
}

TEST(ShareableListSet, ASlotMayChangeTypeWithinItsCapacity) {
  ShareableList list({7, std::string(15, 's')});
  ShmGuard guard(list.shm().name());
  list.set(0, "eight!!!");
  EXPECT_EQ(std::get<std::string>(list[0]), "eight!!!");
  EXPECT_THROW(list.set(0, "nine!!!!!"), std::length_error);
  list.set(0, 1.25);
  EXPECT_EQ(std::get<double>(list[0]), 1.25);
  list.set(0, nullptr);
  EXPECT_TRUE(list[0].is_none());
  list.set(1, true);
  EXPECT_EQ(std::get<bool>(list[1]), true);
  list.set(1, std::string(16, 't'));  // the capacity stays 16 (15 // 8 + 1 words)
  EXPECT_EQ(std::get<std::string>(list[1]), std::string(16, 't'));
  EXPECT_EQ(list.format(), "x16s");
  list.set(0, 5);
  EXPECT_EQ(list.format(), "q16s");
  list.shm().unlink();
}

TEST(ShareableListGet, IndexOutOfRangeThrows) {
  ShareableList list({1, 2});
  ShmGuard guard(list.shm().name());
  EXPECT_THROW((void)list.get(2), std::out_of_range);
  EXPECT_THROW((void)list[100], std::out_of_range);
  EXPECT_THROW(list.set(2, 1), std::out_of_range);
  EXPECT_THROW((void)list.capacity(2), std::out_of_range);
  ShareableList empty(std::span<const ShareableValue>{});
  ShmGuard guard_empty(empty.shm().name());
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_THROW((void)empty.get(0), std::out_of_range);
  list.shm().unlink();
  empty.shm().unlink();
}

TEST(ShareableListCountAndIndex, FindValuesOfTheSameTypeAndValue) {
  ShareableList list({1, "a", 1, 1.0, true, "a", nullptr});
  ShmGuard guard(list.shm().name());
  EXPECT_EQ(list.count(1), 2u);
  EXPECT_EQ(list.count("a"), 2u);
  EXPECT_EQ(list.count(1.0), 1u);
  EXPECT_EQ(list.count(nullptr), 1u);
  EXPECT_EQ(list.count(99), 0u);
  EXPECT_EQ(list.index("a"), 1u);
  EXPECT_EQ(list.index(true), 4u);
  EXPECT_EQ(list.index(nullptr), 6u);
  EXPECT_THROW((void)list.index("missing"), std::invalid_argument);
  list.shm().unlink();
}

TEST(ShareableListAttach, ASegmentThatIsNotAListThrowsDecodeError) {
  auto shm = SharedMemory::create(4096);
  ShmGuard guard(shm.name());
  for (std::size_t i = 0; i < shm.size(); ++i) shm.buf()[i] = static_cast<std::byte>(i * 7 + 3);
  try {
    (void)ShareableList::attach(shm.name());
    FAIL() << "no DecodeError";
  } catch (const mproc::DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find(shm.name()), std::string::npos) << e.what();
  }
  shm.unlink();
}

TEST(ShareableListAttach, ATruncatedOrForgedListThrowsDecodeError) {
  ShareableList list({1, "hello world", 3});
  ShmGuard guard(list.shm().name());
  auto shm = list.shm();
  std::vector<std::byte> original(shm.buf().begin(), shm.buf().end());

  // The same bytes in a segment too short for them: cut in the slot table,
  // then in the data.
  for (std::size_t cut : {std::size_t{12}, std::size_t{30}, original.size() - 8}) {
    auto truncated = SharedMemory::create(cut);
    ShmGuard truncated_guard(truncated.name());
    std::memcpy(truncated.buf().data(), original.data(), cut);
    EXPECT_THROW((void)ShareableList::attach(truncated.name()), mproc::DecodeError) << cut;
    truncated.unlink();
  }
  // A slot count far beyond the segment.
  std::uint32_t huge = 0x10000000;
  std::memcpy(shm.buf().data() + 8, &huge, sizeof(huge));
  EXPECT_THROW((void)ShareableList::attach(shm.name()), mproc::DecodeError);
  // A slot whose offset points past the end.
  std::memcpy(shm.buf().data(), original.data(), original.size());
  std::uint32_t far = 1 << 30;
  std::memcpy(shm.buf().data() + 16, &far, sizeof(far));
  EXPECT_THROW((void)ShareableList::attach(shm.name()), mproc::DecodeError);
  // Forged after attach: reads are checked, not trusted.
  std::memcpy(shm.buf().data(), original.data(), original.size());
  auto attached = ShareableList::attach(shm.name());
  std::memcpy(shm.buf().data() + 16, &far, sizeof(far));
  EXPECT_THROW((void)attached.get(0), mproc::DecodeError);
  shm.unlink();
}

TEST(ShareableListHandle, CopiesShareTheListAndClosingMakesReadsAUsageError) {
  ShareableList list({1, 2});
  ShmGuard guard(list.shm().name());
  ShareableList copy = list;
  copy.set(1, 20);
  EXPECT_EQ(list[1], ShareableValue(20));
  list.shm().close();
  EXPECT_THROW((void)copy.get(0), mproc::UsageError);
  ShareableList empty;
  EXPECT_EQ(empty.size(), 0u);
  list.shm().unlink();
}

TEST(ShareableListCodec, TravelsByNameToAChildStartedBeforeTheListExisted) {
  auto [parent_end, child_end] = mproc::Pipe();
  mproc::Process child([child_end = child_end]() mutable {
    auto list = child_end.recv<ShareableList>();
    if (list.size() != 3 || std::get<std::string>(list[1]) != "from parent") mproc::exit(2);
    list.set(0, std::get<std::int64_t>(list[0]) * 2);
    list.set(1, "from child");
    child_end.send(true);
  });
  child.start();
  ShareableList list({21, "from parent", nullptr});
  ShmGuard guard(list.shm().name());
  parent_end.send(list);
  ASSERT_TRUE(parent_end.poll(30s));
  EXPECT_TRUE(parent_end.recv<bool>());
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_EQ(std::get<std::int64_t>(list[0]), 42);
  EXPECT_EQ(std::get<std::string>(list[1]), "from child");
  list.shm().unlink();
}

}  // namespace
