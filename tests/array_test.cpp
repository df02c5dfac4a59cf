// Array and RawArray across processes: elements shared with children and
// running processes, index checks, slices as views, c_char value and raw,
// the lock (atomic compound assignment, owner death), large arrays.

#include "mproc/array.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstring>
#include <numeric>
#include <ranges>
#include <stdexcept>
#include <string>
#include <vector>

#include "mproc/codec.hpp"
#include "mproc/connection.hpp"
#include "mproc/errors.hpp"
#include "support/child.hpp"
#include "support/expect.hpp"

namespace {

using mproc::Array;
using mproc::RawArray;
using mproc::testing::ChildProcess;
using mproc::testing::expect_throw_containing;

TEST(ArrayIndexing, ChildrensWritesAreSeenByTheParent) {
  Array<int> numbers(std::views::iota(0, 5));  // seed 001: Array('i', range(5))
  std::vector<ChildProcess> children;
  for (int i = 0; i < 4; ++i) {
    children.push_back(ChildProcess::fork([&] {
      for (std::size_t n = 0; n < numbers.size(); ++n) numbers[n] += 1;
      return 0;
    }));
  }
  for (auto& child : children) EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(numbers.to_vector(), (std::vector<int>{4, 5, 6, 7, 8}));
}

TEST(ArrayElement, CompoundAssignmentIsOneLockedStep) {
  Array<long> counters(2);
  std::vector<ChildProcess> children;
  for (int i = 0; i < 4; ++i) {
    children.push_back(ChildProcess::fork([&] {
      for (int n = 0; n < 10000; ++n) {
        counters[0] += 1;
        counters[1] -= 2;
      }
      return 0;
    }));
  }
  for (auto& child : children) EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(counters[0], 40000);
  EXPECT_EQ(static_cast<long>(counters[1]), -80000);
}

TEST(ArrayIndexing, OutOfRangeThrowsAndChangesNothing) {
  Array<int> array{1, 2, 3};
  RawArray<int> raw{1, 2, 3};
  expect_throw_containing<std::out_of_range>([&] { array[3] = 9; }, "index 3 out of range (size 3)");
  expect_throw_containing<std::out_of_range>([&] { (void)static_cast<int>(array[7]); }, "out of range");
  expect_throw_containing<std::out_of_range>([&] { raw[3] = 9; }, "out of range");
  std::vector<int> four{9, 9, 9, 9};
  expect_throw_containing<std::out_of_range>([&] { array.assign(0, four); }, "out of range");
  EXPECT_EQ(array.to_vector(), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(raw.to_vector(), (std::vector<int>{1, 2, 3}));
  Array<int> empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_THROW(empty[0] = 1, std::out_of_range);
}

TEST(ArraySlice, IsAViewOfTheSharedElementsOrACopyUnderTheLock) {
  RawArray<int> raw(10);
  std::iota(raw.begin(), raw.end(), 0);
  auto middle = raw.slice(3, 6);
  ASSERT_EQ(middle.size(), 3u);
  auto child = ChildProcess::fork([&] {
    for (int& x : middle) x = -x;  // the child writes through its view
    return 0;
  });
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(raw.to_vector(), (std::vector<int>{0, 1, 2, -3, -4, -5, 6, 7, 8, 9}));
  EXPECT_EQ(raw.slice(8, 100).size(), 2u);  // stop clamped, as Python's
  EXPECT_TRUE(raw.slice(5, 2).empty());      // backwards: empty, as Python's
  EXPECT_TRUE(raw.slice(20, 30).empty());

  Array<int> array{0, 1, 2, 3, 4};
  EXPECT_EQ(array.slice(1, 3), (std::vector<int>{1, 2}));
  std::vector<int> values{7, 8};
  array.assign(3, values);
  EXPECT_EQ(array.to_vector(), (std::vector<int>{0, 1, 2, 7, 8}));
  auto obj = array.get_obj();
  std::scoped_lock hold(array);
  EXPECT_EQ(std::accumulate(obj.begin(), obj.end(), 0), 18);
}

// Seed 003's c_char array, step by step.
TEST(ArrayChar, ValueStopsAtTheFirstNulAndRawHasEveryByte) {
  Array<char> array{1, 2, 3, 0, 4};
  EXPECT_EQ(array.value(), std::string("\x01\x02\x03"));
  EXPECT_EQ(array[3], '\0');
  EXPECT_EQ(array[4], '\x04');
  array.set_value("\x01");
  EXPECT_EQ(array.value(), "\x01");
  EXPECT_EQ(array.raw(), std::string("\x01\x00\x03\x00\x04", 5));  // a NUL after, the rest kept
  array.set_value(array.value() + "\x01\x01\x01\x01");               // exactly fills it: no NUL
  expect_throw_containing<std::length_error>([&] { array.set_value(array.value() + "\x01"); },
                                             "byte string too long");
  EXPECT_EQ(array.raw(), "\x01\x01\x01\x01\x01");  // unchanged by the refused write
  array[0] = '\x02';
  EXPECT_EQ(array.value(), "\x02\x01\x01\x01\x01");
  array.set_raw("ab");
  EXPECT_EQ(array.raw(), "ab\x01\x01\x01");
  EXPECT_THROW(array.set_raw("abcdef"), std::length_error);
}

TEST(ArrayHandle, WorksWithAProcessThatWasAlreadyRunning) {
  auto [parent_end, child_end] = mproc::Pipe();
  auto child = ChildProcess::fork([child_end = child_end]() mutable {
    auto [array, raw, empty] = child_end.recv<std::tuple<Array<int>, RawArray<double>, RawArray<int>>>();
    for (std::size_t i = 0; i < array.size(); ++i) array[i] += 10;
    for (double& x : raw) x *= 2;
    child_end.send(empty.size());
    return 0;
  });
  Array<int> array{1, 2, 3};
  RawArray<double> raw{0.5, 1.5};
  parent_end.send(std::make_tuple(array, raw, RawArray<int>()));
  EXPECT_EQ(parent_end.recv<std::size_t>(), 0u);
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(array.to_vector(), (std::vector<int>{11, 12, 13}));
  EXPECT_EQ(raw.to_vector(), (std::vector<double>{1.0, 3.0}));
}

// A million ints (4 MB, beyond an arena's small blocks), each child
// writing its own quarter.
TEST(RawArray, LargeArraysAreSharedWhole) {
  constexpr std::size_t kSize = 1'000'000;
  RawArray<int> cells(kSize);
  std::vector<ChildProcess> children;
  for (std::size_t part = 0; part < 4; ++part) {
    children.push_back(ChildProcess::fork([&, part] {
      for (std::size_t i = part * kSize / 4; i < (part + 1) * kSize / 4; ++i) cells[i] = static_cast<int>(part + 1);
      return 0;
    }));
  }
  for (auto& child : children) EXPECT_EQ(child.wait(), 0);
  for (int part = 0; part < 4; ++part) {
    EXPECT_EQ(std::count(cells.begin(), cells.end(), part + 1), static_cast<long>(kSize / 4));
  }
}

Array<int> make_array() { return Array<int>{7, 8, 9}; }

TEST(ArrayElement, OutlivesTheArrayHandleItCameFromAndIsALiveView) {
  auto element = make_array()[1];  // the temporary handle is gone
  EXPECT_EQ(static_cast<int>(element), 8);
  element += 1;
  EXPECT_EQ(static_cast<int>(element), 9);
  Array<int> array{1, 2};
  auto first = array[0];
  array[0] = 5;
  EXPECT_EQ(static_cast<int>(first), 5);  // a view of the element, not a copy
}

TEST(ArrayOwnerDeath, TheNextAccessGetsOwnerDiedErrorAndTheArrayWorksAfter) {
  Array<int> array{1, 2};
  auto child = ChildProcess::fork([&] {
    array.acquire();
    ::raise(SIGKILL);
    return 1;
  });
  EXPECT_EQ(child.wait(), -SIGKILL);
  expect_throw_containing<mproc::OwnerDiedError>([&] { (void)array.to_vector(); }, "died");
  array[1] = 5;
  EXPECT_EQ(array.to_vector(), (std::vector<int>{1, 5}));
}

// A received array whose claimed length disagrees with its memory is
// refused: the count in the message is forged here.
TEST(ArrayHandle, DecodingAForgedLengthIsADecodeError) {
  constexpr std::uint64_t kCount = 12345;  // a byte pattern found once in the message
  RawArray<int> array(kCount);
  auto message = mproc::encode(array);
  std::vector<std::byte> bytes(message.bytes().begin(), message.bytes().end());
  std::array<std::byte, 8> pattern;
  std::memcpy(pattern.data(), &kCount, sizeof kCount);
  auto at = std::search(bytes.begin(), bytes.end(), pattern.begin(), pattern.end());
  ASSERT_NE(at, bytes.end());
  auto decode_with = [&](std::uint64_t count) {
    std::memcpy(&*at, &count, sizeof count);
    std::vector<mproc::UniqueFd> fds;
    for (int fd : message.fds()) fds.emplace_back(::dup(fd));
    return mproc::decode<RawArray<int>>(bytes, fds);
  };
  EXPECT_EQ(decode_with(kCount).size(), kCount);  // the unforged message decodes
  expect_throw_containing<mproc::DecodeError>([&] { decode_with(kCount + 1); }, "another type or length");
  expect_throw_containing<mproc::DecodeError>([&] { decode_with(std::uint64_t{1} << 40); }, "");
  expect_throw_containing<mproc::DecodeError>([&] { decode_with(~std::uint64_t{0}); }, "impossibly large");
}

}  // namespace
