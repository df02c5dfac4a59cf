// The shared arena under every synchronization primitive: freed blocks are
// reused, so objects made and dropped in a loop do not grow memory.

#include "shared/arena.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "mproc/connection.hpp"
#include "mproc/event.hpp"
#include "mproc/lock.hpp"
#include "mproc/process.hpp"

namespace {

TEST(Arena, ObjectsMadeAndDroppedInALoopReuseTheirBlocks) {
  mproc::Lock keep;  // an arena exists from here on
  std::size_t arenas = mproc::detail::mapped_arena_count();
  for (int i = 0; i < 50000; ++i) {  // 3 MB of blocks if none were reused
    mproc::Lock lock;
    mproc::Event event;
  }
  EXPECT_EQ(mproc::detail::mapped_arena_count(), arenas);
}

TEST(Arena, ManyLiveObjectsSpreadOverNewArenas) {
  std::size_t before = mproc::detail::mapped_arena_count();
  std::vector<mproc::Lock> locks(20000);  // 1.3 MB of 64-byte blocks
  EXPECT_GT(mproc::detail::mapped_arena_count(), before);
  locks[0].acquire();
  EXPECT_FALSE(locks[0].acquire(false));
  EXPECT_TRUE(locks[19999].acquire(false));
}

TEST(Arena, AChildsReferencesAreGivenBackWhenItExits) {
  mproc::Lock keep;
  std::size_t allocated = mproc::detail::allocated_bytes_in_current_arena();
  for (int i = 0; i < 5; ++i) {
    mproc::Lock lock;
    mproc::Process p([lock]() mutable { lock.acquire(); lock.release(); });
    p.start();
    p.join();
    ASSERT_EQ(p.exitcode(), 0);
  }
  // Had a child kept its reference, its lock's block would still be allocated.
  EXPECT_EQ(mproc::detail::allocated_bytes_in_current_arena(), allocated);
}

TEST(Arena, BlocksSentAndReceivedAreFreedWhenTheLastHandleGoes) {
  mproc::Lock keep;
  std::size_t allocated = mproc::detail::allocated_bytes_in_current_arena();
  {
    auto [a, b] = mproc::Pipe();
    mproc::Lock sent;
    a.send(sent);
    mproc::Lock received = b.recv<mproc::Lock>();
    EXPECT_GT(mproc::detail::allocated_bytes_in_current_arena(), allocated);
  }
  EXPECT_EQ(mproc::detail::allocated_bytes_in_current_arena(), allocated);
}

}  // namespace
