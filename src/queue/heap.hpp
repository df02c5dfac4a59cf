// A queue's heap: power-of-two blocks in the queue's memory file, with one
// free list per size and a bump pointer, under a robust lock word that also
// guards the spill list. Internal; see src/queue/queue_core.cpp.

#pragma once

#include <cstdint>
#include <utility>

#include "queue/layout.hpp"

namespace mproc::detail::queue_internal {

// Holds the heap lock; repairs the spill list when its last holder died.
class HeapLock {
 public:
  explicit HeapLock(QueueCore& q);
  ~HeapLock();
  HeapLock(const HeapLock&) = delete;
  HeapLock& operator=(const HeapLock&) = delete;

 private:
  void repair_spill_list();

  QueueCore& q_;
};

// A block with room for `payload` bytes; returns its offset.
std::uint64_t allocate_block(QueueCore& q, std::size_t payload);

// Gives a block back. Never throws: a block that cannot be freed stays
// allocated (lost space, not lost items).
void free_block(QueueCore& q, std::uint64_t offset) noexcept;

// Writes the encoded item into a new block; returns the block's offset.
std::uint64_t write_block(QueueCore& q, const Encoder& encoder);

// Hands the item in a block to `sink`, checking its layout against the block.
void deliver_block(QueueCore& q, std::uint64_t offset, ItemSink sink, void* context);

// Frees a block when it goes out of scope, unless released.
class BlockGuard {
 public:
  BlockGuard(QueueCore& q, std::uint64_t offset) : q_(q), offset_(offset) {}
  ~BlockGuard() {
    if (offset_ != 0) free_block(q_, offset_);
  }
  BlockGuard(const BlockGuard&) = delete;
  BlockGuard& operator=(const BlockGuard&) = delete;
  std::uint64_t get() const { return offset_; }
  std::uint64_t release() { return std::exchange(offset_, 0); }
  void reset(std::uint64_t offset) {
    if (offset_ != 0) free_block(q_, offset_);
    offset_ = offset;
  }

 private:
  QueueCore& q_;
  std::uint64_t offset_;
};

}  // namespace mproc::detail::queue_internal
