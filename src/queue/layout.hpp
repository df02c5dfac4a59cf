// The shared-memory layout of a queue (src/queue/queue_core.cpp describes
// the protocol): its constants, the header, the slots, the heap's blocks,
// and QueueCore, a process's handle on one mapped queue. Internal.

#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "common/raise.hpp"
#include "mproc/detail/lock_state.hpp"
#include "mproc/detail/queue_core.hpp"
#include "mproc/errors.hpp"
#include "os/futex.hpp"
#include "os/memory.hpp"

namespace mproc::detail {
namespace queue_internal {

constexpr std::uint64_t kMagic = 0x6575517a636f726dULL;  // "mrocQue" (with a z)
constexpr std::size_t kAddressSpace = std::size_t{16} << 30;
constexpr std::size_t kUnboundedSlots = 4096;
constexpr std::size_t kMinBoundedSlots = 64;
constexpr std::size_t kMaxBoundedSize = std::size_t{1} << 22;
constexpr std::size_t kInitialHeap = std::size_t{1} << 20;
constexpr std::size_t kPage = 4096;
// An item whose encoding (without the fingerprint: the queue's type was
// checked when the handle was made) fits in 16 bytes travels in its slot.
constexpr std::size_t kInlineBytes = 16;
constexpr std::size_t kFingerprintBytes = 8;
constexpr std::size_t kBlockHeader = 64;
constexpr unsigned kMinClass = 7;    // 128-byte blocks
constexpr unsigned kClassCount = 37;  // up to 2^36 bytes
constexpr unsigned kDiscardFromClass = 21;  // blocks of 2 MiB and more give their memory back
constexpr std::size_t kMaxBuffers = 1 << 16;
constexpr int kSpins = 100;
constexpr auto kLivenessInterval = std::chrono::milliseconds(50);
// How long an unbounded queue's put() waits for room in a full ring before
// spilling: a consumer at work frees a slot within microseconds, and the
// ring is far cheaper than the spill list; with no consumer at work, only
// the first put past the ring waits (the next ones see the spill list).
constexpr auto kRoomWait = std::chrono::microseconds(250);

// Slot state: | position (40 bits) | phase (2 bits) | pid (22 bits) |.
// Linux pids stay below 2^22 (PID_MAX_LIMIT).
enum Phase : std::uint64_t { kEmpty = 0, kWriting = 1, kReady = 2, kReading = 3 };
constexpr unsigned kPidBits = 22;
constexpr unsigned kPositionShift = 24;
constexpr std::uint64_t kPositionMask = (std::uint64_t{1} << 40) - 1;

constexpr std::uint64_t make_state(std::uint64_t position, Phase phase, std::uint32_t pid) {
  return ((position & kPositionMask) << kPositionShift) | (static_cast<std::uint64_t>(phase) << kPidBits) | pid;
}
constexpr Phase phase_of(std::uint64_t state) { return static_cast<Phase>((state >> kPidBits) & 3); }
constexpr int pid_of(std::uint64_t state) { return static_cast<int>(state & ((1u << kPidBits) - 1)); }

// How far the slot's position is ahead of `position` (negative: behind), in
// the 40 bits the state keeps.
constexpr std::int64_t distance(std::uint64_t position, std::uint64_t state) {
  std::uint64_t diff = ((state >> kPositionShift) - position) & kPositionMask;
  return static_cast<std::int64_t>(diff << kPositionShift) >> kPositionShift;
}

// What a slot holds, stamped with the position of the claim that wrote it:
// | position (40 bits) | length (6 bits) | where (2 bits) |. A stamp left by
// an earlier claim never matches a later one, so a dropped claim's block is
// freed only by whoever drops that very claim.
enum Where : std::uint64_t { kNowhere = 0, kInline = 1, kInBlock = 2 };

constexpr std::uint64_t make_content(std::uint64_t position, std::size_t length, Where where) {
  return ((position & kPositionMask) << 8) | (static_cast<std::uint64_t>(length) << 2) | where;
}
constexpr bool content_of(std::uint64_t content, std::uint64_t position) {
  return (content >> 8) == (position & kPositionMask);
}
constexpr Where where_of(std::uint64_t content) { return static_cast<Where>(content & 3); }
constexpr std::size_t length_of(std::uint64_t content) { return (content >> 2) & 63; }

struct alignas(32) Slot {
  std::atomic<std::uint64_t> state;
  std::atomic<std::uint64_t> content;
  std::byte data[kInlineBytes];  // the item, or its block's offset

  std::uint64_t block() const {
    std::uint64_t offset;
    std::memcpy(&offset, data, sizeof(offset));
    return offset;
  }
  void set_block(std::uint64_t offset) { std::memcpy(data, &offset, sizeof(offset)); }
};
static_assert(sizeof(Slot) == 32);

struct alignas(64) Header {
  std::uint64_t magic;
  std::uint32_t kind;
  std::uint32_t slot_count;
  std::uint64_t fingerprint;
  std::uint64_t maxsize;
  std::uint64_t slots_offset;
  std::uint64_t heap_begin;

  alignas(64) std::atomic<std::uint64_t> tail;
  alignas(64) std::atomic<std::uint64_t> head;

  alignas(64) os::FutexWord items_posted;
  std::atomic<std::uint32_t> getters_asleep;  // set by sleepers, cleared by their waker
  alignas(64) os::FutexWord space_freed;
  std::atomic<std::uint32_t> putters_asleep;
  alignas(64) std::atomic<std::int64_t> unfinished;
  os::FutexWord tasks_done;
  std::atomic<std::uint32_t> joiners_asleep;

  alignas(64) os::FutexWord heap_lock;
  std::atomic<std::uint64_t> file_size;
  std::atomic<std::uint64_t> spilled;  // items on the spill list
  std::uint64_t heap_top;
  std::uint64_t spill_head;
  std::uint64_t spill_tail;
  std::uint64_t free_blocks[kClassCount];
};
static_assert(sizeof(Header) <= kPage);

struct BlockHeader {
  std::uint64_t next;  // free list or spill list
  std::uint32_t size_class;
  std::uint32_t reserved;
};

// The start of an item in a block: its message, then its out-of-band
// buffers, each 64-byte aligned, their sizes listed here.
struct ItemLayout {
  std::uint32_t buffer_count;
  std::uint32_t reserved;
  std::uint64_t message_size;
  // std::uint64_t buffer_sizes[buffer_count];
};

constexpr std::size_t align_up(std::size_t n, std::size_t alignment) { return (n + alignment - 1) & ~(alignment - 1); }

inline std::size_t item_layout_size(std::size_t message, std::span<const ByteView> buffers) {
  std::size_t size = align_up(sizeof(ItemLayout) + 8 * buffers.size() + message, 64);
  for (const ByteView& buffer : buffers) size += align_up(buffer.size(), 64);
  return size;
}

[[noreturn]] inline void fail_corrupt(const char* what) {
  throw DecodeError(std::string("Queue: shared state is corrupt (") + what + ")");
}

// The calling process, as claims and the heap lock name it.
inline std::uint32_t me() { return lock_owner_id(); }

}  // namespace queue_internal

using namespace queue_internal;

// What a process has seen of one claim, to tell a claim held for long from
// one that is merely busy.
struct ClaimWatch {
  std::atomic<std::uint64_t> state{0};
  std::atomic<std::int64_t> since{0};  // steady-clock nanoseconds
};

class QueueCore {
 public:
  UniqueFd fd;
  os::Mapping reservation;
  Header* header = nullptr;
  Slot* slots = nullptr;
  std::uint64_t slot_mask = 0;
  std::atomic<std::size_t> mapped{0};
  // The process that called close() on this handle: a child forked after
  // it may put again, as in CPython (its queue is reset after fork).
  std::atomic<std::uint32_t> closed_by{0};
  ClaimWatch watched_writer;  // by consumers, at the head
  ClaimWatch watched_reader;  // by producers, on the ring's last lap

  std::byte* at(std::uint64_t offset) const { return reservation.data() + offset; }
  Slot& slot(std::uint64_t position) const { return slots[position & slot_mask]; }
  std::uint64_t slot_count() const { return slot_mask + 1; }

  // Maps the file up to `end` in this process, if another process grew it.
  // No lock (a fork could copy it held): threads that race map the same
  // part of the file at the same address, which changes nothing.
  // The file's own size decides, not the header's word for it.
  void ensure_mapped(std::uint64_t end) {
    std::size_t have = mapped.load(std::memory_order_acquire);
    if (end <= have) return;
    std::size_t size = std::min(unwrap(os::file_size(fd.get()), "mapping a Queue's storage"), reservation.size());
    if (end > size) fail_corrupt("an offset beyond the file");
    check(os::map_fixed(fd.get(), at(have), have, size - have), "mapping a Queue's storage");
    while (have < size && !mapped.compare_exchange_weak(have, size, std::memory_order_acq_rel)) {
    }
  }

  BlockHeader& block_header(std::uint64_t offset) {
    if (offset < header->heap_begin || offset % 64 != 0 || offset > kAddressSpace - kBlockHeader) {
      fail_corrupt("a block outside the heap");
    }
    ensure_mapped(offset + kBlockHeader);
    return *reinterpret_cast<BlockHeader*>(at(offset));
  }
};

}  // namespace mproc::detail
