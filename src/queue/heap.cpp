#include "queue/heap.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>
#include <vector>

#include "shared/lock_word.hpp"

namespace mproc::detail::queue_internal {
namespace {

unsigned size_class_for(std::size_t bytes) {
  unsigned k = std::max<unsigned>(kMinClass, static_cast<unsigned>(std::bit_width(bytes - 1)));
  if (k >= kClassCount) throw std::length_error("Queue: item too large (" + std::to_string(bytes) + " bytes)");
  return k;
}

// Room for `size` more bytes past the heap's top: grows the file, at least
// doubling it (a memory file takes no memory for bytes never written).
void grow_file(QueueCore& q, std::uint64_t end) {
  Header& h = *q.header;
  std::uint64_t size = h.file_size.load(std::memory_order_relaxed);
  if (end <= size) return;
  if (end > kAddressSpace) {
    throw std::length_error("Queue: more than " + std::to_string(kAddressSpace >> 30) +
                            " GiB of items waiting; get some before putting more");
  }
  std::uint64_t grown = std::min<std::uint64_t>(kAddressSpace, std::max(end, 2 * size));
  check(os::resize_file(q.fd.get(), grown), "growing a Queue's storage");
  h.file_size.store(grown, std::memory_order_release);
}

std::uint64_t block_capacity(const BlockHeader& block) {
  if (block.size_class < kMinClass || block.size_class >= kClassCount) fail_corrupt("a block of no size");
  return (std::uint64_t{1} << block.size_class) - kBlockHeader;
}

}  // namespace

HeapLock::HeapLock(QueueCore& q) : q_(q) {
  if (lock_word_acquire(q.header->heap_lock, me(), true, std::nullopt) == LockResult::owner_died) {
    try {
      repair_spill_list();
    } catch (...) {
      lock_word_release(q.header->heap_lock);
      throw;
    }
  }
}

HeapLock::~HeapLock() { lock_word_release(q_.header->heap_lock); }

// A push or pop commits with one store; the tail and the count that follow
// it may be missing. Rebuilds both from the list itself.
void HeapLock::repair_spill_list() {
  Header& h = *q_.header;
  std::uint64_t count = 0;
  std::uint64_t last = 0;
  const std::uint64_t most = kAddressSpace >> kMinClass;  // a longer list has a cycle
  for (std::uint64_t at = h.spill_head; at != 0; at = q_.block_header(at).next) {
    if (++count > most) fail_corrupt("a cycle in the spill list");
    last = at;
  }
  h.spill_tail = last;
  h.spilled.store(count, std::memory_order_release);
}

std::uint64_t allocate_block(QueueCore& q, std::size_t payload) {
  unsigned k = size_class_for(payload + kBlockHeader);
  std::uint64_t size = std::uint64_t{1} << k;
  std::uint64_t offset = 0;
  {
    HeapLock lock(q);
    Header& h = *q.header;
    offset = h.free_blocks[k];
    if (offset != 0) {
      h.free_blocks[k] = q.block_header(offset).next;
    } else {
      offset = align_up(h.heap_top, std::min<std::uint64_t>(size, kPage));
      grow_file(q, offset + size);
      h.heap_top = offset + size;
    }
  }
  q.ensure_mapped(offset + size);
  BlockHeader& block = q.block_header(offset);
  block.next = 0;
  block.size_class = k;
  return offset;
}

void free_block(QueueCore& q, std::uint64_t offset) noexcept {
  try {
    BlockHeader& block = q.block_header(offset);
    unsigned k = block.size_class;
    if (k < kMinClass || k >= kClassCount) return;  // corrupt: leave it
    std::uint64_t size = std::uint64_t{1} << k;
    q.ensure_mapped(offset + size);
    if (k >= kDiscardFromClass) (void)os::discard_file_range(q.fd.get(), offset + kPage, size - kPage);
    HeapLock lock(q);
    block.next = q.header->free_blocks[k];
    q.header->free_blocks[k] = offset;
  } catch (...) {
    // A block that cannot be freed stays allocated: lost space, not lost items.
  }
}

std::uint64_t write_block(QueueCore& q, const Encoder& encoder) {
  std::span<const std::byte> message = encoder.bytes();
  std::span<const ByteView> buffers = encoder.buffers();
  std::uint64_t offset = allocate_block(q, item_layout_size(message.size(), buffers));
  std::byte* payload = q.at(offset + kBlockHeader);
  ItemLayout layout{static_cast<std::uint32_t>(buffers.size()), 0, message.size()};
  std::memcpy(payload, &layout, sizeof(layout));
  std::size_t at = sizeof(layout);
  for (const ByteView& buffer : buffers) {
    std::uint64_t size = buffer.size();
    std::memcpy(payload + at, &size, sizeof(size));
    at += sizeof(size);
  }
  std::memcpy(payload + at, message.data(), message.size());
  at = align_up(at + message.size(), 64);
  for (const ByteView& buffer : buffers) {
    std::memcpy(payload + at, buffer.data(), buffer.size());
    at += align_up(buffer.size(), 64);
  }
  return offset;
}

void deliver_block(QueueCore& q, std::uint64_t offset, ItemSink sink, void* context) {
  BlockHeader& block = q.block_header(offset);
  std::uint64_t capacity = block_capacity(block);
  q.ensure_mapped(offset + kBlockHeader + capacity);
  const std::byte* payload = q.at(offset + kBlockHeader);
  ItemLayout layout;
  std::memcpy(&layout, payload, sizeof(layout));
  if (layout.buffer_count > kMaxBuffers) fail_corrupt("too many buffers");
  std::vector<std::uint64_t> sizes(layout.buffer_count);
  std::size_t at = sizeof(layout);
  if (at + 8 * sizes.size() > capacity) fail_corrupt("an item larger than its block");
  if (!sizes.empty()) std::memcpy(sizes.data(), payload + at, 8 * sizes.size());
  at += 8 * sizes.size();
  if (layout.message_size > capacity - at) fail_corrupt("an item larger than its block");
  std::span<const std::byte> message(payload + at, layout.message_size);
  at = align_up(at + layout.message_size, 64);
  std::vector<ByteView> buffers;
  buffers.reserve(sizes.size());
  for (std::uint64_t size : sizes) {
    if (at > capacity || size > capacity - at) fail_corrupt("an item larger than its block");
    buffers.emplace_back(payload + at, size);
    at += align_up(size, 64);
  }
  sink(context, message, buffers, true);
}

}  // namespace mproc::detail::queue_internal
