// The queue under Queue<T>, SimpleQueue<T> and JoinableQueue<T>.
//
// Layout. One memory file (memfd) per queue, mapped by every process that
// holds a handle: a header page, a ring of 32-byte slots, then a heap that
// grows with the file. Each process reserves kAddressSpace bytes of address
// space for the file and maps new pieces into it as the file grows, so an
// offset is a fixed address everywhere.
//
// The ring. Items travel through a ring of slots (Vyukov's bounded queue,
// with the claim made on the slot rather than on the tail counter, so that a
// claim always names its owner). A slot's state word packs the position it
// serves, a phase and the pid of the process working on it:
//   empty(p)  -> writing(p, producer) -> ready(p) -> reading(p, consumer)
//   -> empty(p + slots).
// Producers claim the slot at the tail position, consumers the slot at the
// head position, each with one compare-and-swap on the slot; the tail and
// head counters only follow (anyone may move them on past a claimed slot).
// An item of up to kInlineBytes is copied into its slot; a larger one is
// written into a heap block first, and the slot carries the block's offset,
// so a claim is held only for a few stores whatever the item's size.
//
// Crashes. A producer killed while its slot is `writing` leaves a claim
// whose owner is dead: the consumer that waits on it checks the owner (once
// the claim has stood for kLivenessInterval) and drops the claim, freeing
// the block the claim stamped into the slot, so the partial item is never
// delivered. A consumer killed while `reading` is found the same way by the
// producer that needs the slot on the next lap. Nobody waits on a dead
// process for much more than kLivenessInterval. Publishing and releasing
// are compare-and-swaps on the owner's own claim, so a process wrongly
// taken for dead learns it and changes nothing.
//
// Unbounded queues. When the ring is full, put() does not wait: the item
// goes, in a heap block, onto a spill list (under the heap lock). While the
// spill list is not empty every put goes there too, and consumers take from
// it only when the ring is empty, so each producer's items keep their order.
//
// Bounded queues (maxsize > 0) have a ring of at least maxsize slots and
// never spill: put() waits until fewer than maxsize items are in the queue.
//
// The heap. Power-of-two blocks with one free list per size, a bump pointer
// and the spill list, under one lock word (lock_word.hpp). Every change
// commits with a single store, so a process killed while holding the lock
// leaves it consistent (at worst a block leaked); the spill list's tail and
// count are rebuilt by whoever takes the lock over.
//
// Sleeping. Consumers sleep on a futex word that producers bump, and wake,
// when a sleeper has raised a flag (checked after a full barrier on both
// sides: no lost wake-up); producers of a full bounded queue sleep the same
// way on another word, joiners on a third. Sleeps last at most
// kLivenessInterval, to look at dead owners.

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "common/raise.hpp"
#include "mproc/detail/lock_state.hpp"
#include "mproc/detail/queue_core.hpp"
#include "mproc/errors.hpp"
#include "os/futex.hpp"
#include "os/memory.hpp"
#include "shared/lock_word.hpp"

namespace mproc::detail {
namespace {

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

std::size_t item_layout_size(std::size_t message, std::span<const ByteView> buffers) {
  std::size_t size = align_up(sizeof(ItemLayout) + 8 * buffers.size() + message, 64);
  for (const ByteView& buffer : buffers) size += align_up(buffer.size(), 64);
  return size;
}

[[noreturn]] void fail_corrupt(const char* what) {
  throw DecodeError(std::string("Queue: shared state is corrupt (") + what + ")");
}

}  // namespace

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

namespace {

std::uint32_t me() { return lock_owner_id(); }

// --- liveness -------------------------------------------------------------

// Whether the process named in `state`, a claim, has died. A claim this
// process has not seen unchanged for kLivenessInterval is taken to be alive
// without looking: the check costs several system calls, and a claim
// normally lasts a few stores. After that it looks once per interval.
// (Each handle watches its own claims, so a thread polling several queues
// still gets round to each.)
bool claim_owner_dead(ClaimWatch& watch, std::uint64_t state) {
  std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::steady_clock::now().time_since_epoch())
                         .count();
  if (watch.state.exchange(state, std::memory_order_relaxed) != state) {
    watch.since.store(now, std::memory_order_relaxed);
    return false;
  }
  std::int64_t since = watch.since.load(std::memory_order_relaxed);
  if (now - since < std::chrono::nanoseconds(kLivenessInterval).count()) return false;
  if (!watch.since.compare_exchange_strong(since, now, std::memory_order_relaxed)) return false;
  int pid = pid_of(state);
  return pid != 0 && static_cast<std::uint32_t>(pid) != me() && !os::process_alive(pid);
}

// --- wake-ups ---------------------------------------------------------------

// Sleepers raise a flag that their waker lowers, waking all of them (those
// with nothing to do raise it again and sleep): a flag, not a count, so a
// sleeper killed in its sleep costs one wake-up, not one on every put.
//
// The waker's change must be ordered before its look at the flag, against
// the sleeper's flag, fence, look at the queue. After a seq_cst
// read-modify-write (the publishing and releasing compare-and-swaps) a
// seq_cst load of the flag is enough (on x86 a plain load, no fence: the
// fence was a seventh of a put); after anything else, a fence comes first.
void wake_sleepers_after_seq_cst(os::FutexWord& word, std::atomic<std::uint32_t>& asleep) {
  if (asleep.load(std::memory_order_seq_cst) == 0 || asleep.exchange(0, std::memory_order_relaxed) == 0) return;
  word.fetch_add(1, std::memory_order_release);
  os::futex_wake_all(word);
}

void wake_sleepers(os::FutexWord& word, std::atomic<std::uint32_t>& asleep) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  wake_sleepers_after_seq_cst(word, asleep);
}

void wake_getters(QueueCore& q) { wake_sleepers(q.header->items_posted, q.header->getters_asleep); }
void wake_putters(QueueCore& q) { wake_sleepers(q.header->space_freed, q.header->putters_asleep); }

// --- the heap ---------------------------------------------------------------

// Holds the heap lock; repairs the spill list when its last holder died.
class HeapLock {
 public:
  explicit HeapLock(QueueCore& q) : q_(q) {
    if (lock_word_acquire(q.header->heap_lock, me(), true, std::nullopt) == LockResult::owner_died) {
      try {
        repair_spill_list();
      } catch (...) {
        lock_word_release(q.header->heap_lock);
        throw;
      }
    }
  }
  ~HeapLock() { lock_word_release(q_.header->heap_lock); }
  HeapLock(const HeapLock&) = delete;
  HeapLock& operator=(const HeapLock&) = delete;

 private:
  // A push or pop commits with one store; the tail and the count that
  // follow it may be missing. Rebuilds both from the list itself.
  void repair_spill_list() {
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

  QueueCore& q_;
};

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

// A block with room for `payload` bytes; returns its offset.
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

std::uint64_t block_capacity(const BlockHeader& block) {
  if (block.size_class < kMinClass || block.size_class >= kClassCount) fail_corrupt("a block of no size");
  return (std::uint64_t{1} << block.size_class) - kBlockHeader;
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

// Writes the encoded item into a new block; returns the block's offset.
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

// Hands the item in a block to `sink`, checking its layout against the block.
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

// --- JoinableQueue's count ----------------------------------------------------

bool joinable(const QueueCore& q) { return q.header->kind == static_cast<std::uint32_t>(QueueKind::joinable); }

void finish_tasks(QueueCore& q, std::int64_t count) {
  if (q.header->unfinished.fetch_sub(count, std::memory_order_acq_rel) == count) {
    wake_sleepers(q.header->tasks_done, q.header->joiners_asleep);
  }
}

// A JoinableQueue counts an item as unfinished just before the store that
// puts it in the queue (so no task_done() can come first), and takes the
// count back if that store fails: a producer killed while waiting for room
// or copying its item leaves no count behind.
void start_task(QueueCore& q) {
  if (joinable(q)) q.header->unfinished.fetch_add(1, std::memory_order_acq_rel);
}
void finish_tasks_if_joinable(QueueCore& q) {
  if (joinable(q)) finish_tasks(q, 1);
}
void unstart_task(QueueCore& q) { finish_tasks_if_joinable(q); }

// --- the spill list (unbounded queues) --------------------------------------

// Moves a counter on past `position`, unless someone already has.
void move_past(std::atomic<std::uint64_t>& counter, std::uint64_t position) {
  counter.compare_exchange_strong(position, position + 1, std::memory_order_acq_rel);
}

// Whether the slot at the tail is free for this lap, moving the tail on
// past claimed slots first (it may lag).
bool ring_has_room(QueueCore& q) {
  for (;;) {
    std::uint64_t position = q.header->tail.load(std::memory_order_acquire);
    std::uint64_t state = q.slot(position).state.load(std::memory_order_acquire);
    std::int64_t d = distance(position, state);
    if (d == 0 && phase_of(state) == kEmpty) return true;
    if (d < 0) return false;  // last lap's item is still there
    move_past(q.header->tail, position);
  }
}

// Appends the block to the spill list, unless the list is empty and the
// ring has room again. Returns whether it did. The count goes up before the
// link (the commit): a count above the list's length only sends a consumer
// to look under the lock, where it finds the truth; a linked item that no
// count announced would wait unseen.
bool spill(QueueCore& q, std::uint64_t offset) {
  {
    HeapLock lock(q);
    Header& h = *q.header;
    if (h.spill_head == 0 && ring_has_room(q)) return false;
    q.block_header(offset).next = 0;
    h.spilled.fetch_add(1, std::memory_order_acq_rel);
    start_task(q);
    if (h.spill_head == 0) {
      h.spill_head = offset;
    } else {
      q.block_header(h.spill_tail).next = offset;
    }
    if (queue_claim_hook != nullptr) queue_claim_hook(QueueClaim::spilling);
    h.spill_tail = offset;
  }
  wake_getters(q);
  return true;
}

enum class Unspill { taken, changed, none };

// Takes the first spilled block into `offset` if the ring is still empty at
// `position` (its slot still in `state`).
Unspill unspill(QueueCore& q, std::uint64_t position, std::uint64_t state, std::uint64_t& offset) {
  HeapLock lock(q);
  Header& h = *q.header;
  if (h.head.load(std::memory_order_acquire) != position ||
      q.slot(position).state.load(std::memory_order_acquire) != state) {
    return Unspill::changed;
  }
  offset = h.spill_head;
  if (offset == 0) {
    h.spilled.store(0, std::memory_order_release);  // a count its producer did not live to link
    return Unspill::none;
  }
  h.spill_head = q.block_header(offset).next;
  if (h.spill_head == 0) h.spill_tail = 0;
  h.spilled.fetch_sub(1, std::memory_order_release);
  return Unspill::taken;
}

// --- the ring ---------------------------------------------------------------

// Frees a slot whose owner died: the partial item is dropped, its block
// freed. The slot is first claimed from the dead owner (one
// compare-and-swap, so only one process drops it); what it holds is freed
// only if stamped by that very claim. Dying in here leaves a claim of ours
// for the next process to drop, at worst leaking the block.
void drop_dead_claim(QueueCore& q, Slot& slot, std::uint64_t state, std::uint64_t position,
                     std::uint64_t next_position) {
  std::uint64_t ours = make_state(position, phase_of(state), me());
  if (!slot.state.compare_exchange_strong(state, ours, std::memory_order_acq_rel)) return;
  std::uint64_t content = slot.content.load(std::memory_order_acquire);
  std::uint64_t block = slot.block();
  slot.state.store(make_state(next_position, kEmpty, 0), std::memory_order_release);
  if (where_of(content) == kInBlock && content_of(content, position)) free_block(q, block);
  if (phase_of(state) == kWriting) finish_tasks_if_joinable(q);
  wake_putters(q);
  wake_getters(q);
}

enum class PutOutcome { put, full, spill, dropped };

// One attempt to put into the ring. `block` is the item's block, or 0 for
// an inline item. `dropped`: this process was taken for dead while it held
// its claim, and the claim (with the block, if it was stamped) was dropped.
PutOutcome put_in_ring(QueueCore& q, const Encoder& encoder, std::uint64_t block) {
  Header& h = *q.header;
  const std::uint64_t slots = q.slot_count();
  for (;;) {
    std::uint64_t position = h.tail.load(std::memory_order_acquire);
    if (h.maxsize != 0) {
      auto used = static_cast<std::int64_t>(position - h.head.load(std::memory_order_acquire));
      if (used >= static_cast<std::int64_t>(h.maxsize)) return PutOutcome::full;
    }
    Slot& slot = q.slot(position);
    std::uint64_t state = slot.state.load(std::memory_order_acquire);
    std::int64_t d = distance(position, state);
    if (d == 0 && phase_of(state) == kEmpty) {
      std::uint64_t claim = make_state(position, kWriting, me());
      start_task(q);
      if (!slot.state.compare_exchange_strong(state, claim, std::memory_order_acquire)) {
        unstart_task(q);
        continue;
      }
      // The tail is a hint, stored without a compare-and-swap (one locked
      // instruction less per put): a producer that stores it late moves it
      // back, and the next one finds the slots there claimed and moves it on.
      h.tail.store(position + 1, std::memory_order_release);
      if (queue_claim_hook != nullptr) queue_claim_hook(QueueClaim::writing);
      if (block != 0) {
        slot.set_block(block);
        slot.content.store(make_content(position, 0, kInBlock), std::memory_order_release);
      } else {
        std::span<const std::byte> message = encoder.bytes().subspan(kFingerprintBytes);
        std::memcpy(slot.data, message.data(), message.size());
        slot.content.store(make_content(position, message.size(), kInline), std::memory_order_release);
      }
      if (!slot.state.compare_exchange_strong(claim, make_state(position, kReady, 0), std::memory_order_seq_cst)) {
        return PutOutcome::dropped;
      }
      wake_sleepers_after_seq_cst(h.items_posted, h.getters_asleep);
      return PutOutcome::put;
    }
    if (d >= 0) {  // claimed by another producer, or the tail lags: move it on
      move_past(h.tail, position);
      continue;
    }
    if (d == -static_cast<std::int64_t>(slots)) {  // last lap's item is still there
      if (phase_of(state) == kReading && claim_owner_dead(q.watched_reader, state)) {
        drop_dead_claim(q, slot, state, position - slots, position);
        continue;
      }
      return h.maxsize != 0 ? PutOutcome::full : PutOutcome::spill;
    }
    // A stale tail: read it again.
  }
}

// Releases a slot this process claimed for reading. False if the claim was
// dropped meanwhile (this process was taken for dead): the item is then
// not ours to deliver.
bool release_slot(QueueCore& q, Slot& slot, std::uint64_t position) {
  std::uint64_t claim = make_state(position, kReading, me());
  bool ours = slot.state.compare_exchange_strong(claim, make_state(position + q.slot_count(), kEmpty, 0),
                                                 std::memory_order_seq_cst);
  wake_sleepers_after_seq_cst(q.header->space_freed, q.header->putters_asleep);
  return ours;
}

enum class GetOutcome { got, empty, dropped };

// Takes the item of a slot this process claimed for reading.
GetOutcome take_from_slot(QueueCore& q, Slot& slot, std::uint64_t position, ItemSink sink, void* context) {
  std::uint64_t content = slot.content.load(std::memory_order_acquire);
  if (!content_of(content, position) || where_of(content) == kNowhere || length_of(content) > kInlineBytes) {
    bool ours = release_slot(q, slot, position);
    if (!ours) return GetOutcome::dropped;
    fail_corrupt("a ready slot without its item");
  }
  if (where_of(content) == kInline) {
    std::byte copy[kInlineBytes];
    std::size_t length = length_of(content);
    std::memcpy(copy, slot.data, length);
    if (!release_slot(q, slot, position)) return GetOutcome::dropped;
    sink(context, std::span<const std::byte>(copy, length), {}, false);
    return GetOutcome::got;
  }
  std::uint64_t block = slot.block();
  if (!release_slot(q, slot, position)) return GetOutcome::dropped;
  BlockGuard guard(q, block);
  deliver_block(q, block, sink, context);
  return GetOutcome::got;
}

// One attempt to take an item, from the ring or, when the ring is empty,
// from the spill list. A claim being written at the head is looked at
// (clock, maybe liveness) only if `look_at_claims`: not while spinning.
GetOutcome get_once(QueueCore& q, ItemSink sink, void* context, bool look_at_claims) {
  Header& h = *q.header;
  for (;;) {
    std::uint64_t position = h.head.load(std::memory_order_acquire);
    Slot& slot = q.slot(position);
    std::uint64_t state = slot.state.load(std::memory_order_acquire);
    std::int64_t d = distance(position, state);
    if (d > 0 || (d == 0 && phase_of(state) == kReading)) {  // taken: move the head on
      move_past(h.head, position);
      continue;
    }
    if (d == 0 && phase_of(state) == kReady) {
      if (!slot.state.compare_exchange_strong(state, make_state(position, kReading, me()),
                                              std::memory_order_acquire)) {
        continue;
      }
      move_past(h.head, position);
      if (queue_claim_hook != nullptr) queue_claim_hook(QueueClaim::reading);
      GetOutcome outcome = take_from_slot(q, slot, position, sink, context);
      if (outcome == GetOutcome::dropped) continue;
      return outcome;
    }
    if (d == 0 && phase_of(state) == kWriting) {
      if (look_at_claims && claim_owner_dead(q.watched_writer, state)) {
        drop_dead_claim(q, slot, state, position, position + q.slot_count());
        continue;
      }
      return GetOutcome::empty;  // being written: not there yet
    }
    // Nothing claimed at the head: the ring is empty.
    if (h.spilled.load(std::memory_order_acquire) == 0) return GetOutcome::empty;
    std::uint64_t block = 0;
    Unspill taken = unspill(q, position, state, block);
    if (taken == Unspill::changed) continue;
    if (taken == Unspill::none) return GetOutcome::empty;
    wake_putters(q);
    BlockGuard guard(q, block);
    deliver_block(q, block, sink, context);
    return GetOutcome::got;
  }
}

// Sleeps on `word` for at most the smaller of `deadline`'s remainder and
// kLivenessInterval, with the `asleep` flag raised, unless `ready()` says
// there is no need. Returns false once the deadline has passed.
template <class Ready>
bool sleep_on(os::FutexWord& word, std::atomic<std::uint32_t>& asleep, const os::Deadline& deadline, Ready ready) {
  os::Timeout left = deadline.remaining();
  if (left && left->count() == 0) return false;
  asleep.store(1, std::memory_order_relaxed);
  // Orders the flag before ready()'s loads, against the waker's change,
  // fence, then look at the flag: one of the two sees the other.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  std::uint32_t seen = word.load(std::memory_order_acquire);
  if (!ready()) {
    os::Timeout slice = left ? std::min<std::chrono::nanoseconds>(*left, kLivenessInterval)
                             : std::chrono::nanoseconds(kLivenessInterval);
    (void)os::futex_wait(word, seen, slice);
  }
  return true;
}

// Whether a get could find something (without taking it). An item still
// being written is not something: the writer wakes us when it is done (and
// a get does not look past it at the spill list either).
bool something_to_get(QueueCore& q) {
  Header& h = *q.header;
  std::uint64_t position = h.head.load(std::memory_order_acquire);
  std::uint64_t state = q.slot(position).state.load(std::memory_order_acquire);
  std::int64_t d = distance(position, state);
  if (d > 0 || (d == 0 && phase_of(state) == kReady) || (d == 0 && phase_of(state) == kReading)) return true;
  if (d == 0 && phase_of(state) == kWriting) return false;
  return h.spilled.load(std::memory_order_acquire) != 0;
}

bool room_to_put(QueueCore& q) {
  Header& h = *q.header;
  if (h.maxsize == 0) return ring_has_room(q);
  std::uint64_t position = h.tail.load(std::memory_order_acquire);
  auto used = static_cast<std::int64_t>(position - h.head.load(std::memory_order_acquire));
  return used < static_cast<std::int64_t>(h.maxsize) && ring_has_room(q);
}

// Waits, at most kRoomWait, for a full ring to have room.
void wait_briefly_for_room(QueueCore& q) {
  os::Deadline deadline{std::chrono::nanoseconds(kRoomWait)};
  for (int spins = 0; !ring_has_room(q); ++spins) {
    if (spins < kSpins) {
      os::cpu_relax();
    } else if (!sleep_on(q.header->space_freed, q.header->putters_asleep, deadline,
                         [&] { return ring_has_room(q); })) {
      return;
    }
  }
}

std::size_t heap_begin_for(std::size_t slots) { return align_up(kPage + slots * sizeof(Slot), kPage); }

std::size_t slots_for(std::size_t maxsize) {
  if (maxsize == 0) return kUnboundedSlots;
  return std::bit_ceil(std::max(maxsize, kMinBoundedSlots));
}

}  // namespace

// --- the interface ---------------------------------------------------------------

void (*queue_claim_hook)(QueueClaim) = nullptr;

Encoder& queue_encoder() {
  thread_local Encoder encoder(EncodeOptions{kMinOutOfBandBytes});
  return encoder;
}

void trim_queue_encoder() noexcept {
  Encoder& encoder = queue_encoder();
  if (encoder.bytes().size() > (std::size_t{1} << 20)) encoder = Encoder(EncodeOptions{kMinOutOfBandBytes});
}

namespace {

std::shared_ptr<QueueCore> map_queue(UniqueFd fd) {
  auto q = std::make_shared<QueueCore>();
  std::size_t size = unwrap(os::file_size(fd.get()), "mapping a Queue");
  if (size < kPage || size > kAddressSpace) throw DecodeError("Queue: the descriptor is not a queue's (wrong size)");
  q->fd = std::move(fd);
  q->reservation = unwrap(os::reserve_address_space(kAddressSpace), "reserving address space for a Queue");
  check(os::map_fixed(q->fd.get(), q->at(0), 0, size), "mapping a Queue");
  q->mapped.store(size, std::memory_order_release);
  q->header = reinterpret_cast<Header*>(q->at(0));
  return q;
}

void attach_slots(QueueCore& q) {
  Header& h = *q.header;
  if (h.slot_count < kMinBoundedSlots || h.slot_count > kMaxBoundedSize || !std::has_single_bit(h.slot_count) ||
      h.slots_offset != kPage || h.heap_begin != heap_begin_for(h.slot_count) || h.maxsize > h.slot_count) {
    fail_corrupt("the header's layout");
  }
  q.slot_mask = h.slot_count - 1;
  q.ensure_mapped(h.slots_offset + std::uint64_t{h.slot_count} * sizeof(Slot));
  q.slots = reinterpret_cast<Slot*>(q.at(h.slots_offset));
}

}  // namespace

std::shared_ptr<QueueCore> create_queue(QueueKind kind, std::uint64_t fingerprint, std::size_t maxsize) {
  if (maxsize > kMaxBoundedSize) {
    throw std::invalid_argument("Queue: maxsize " + std::to_string(maxsize) + " is above the limit of " +
                                std::to_string(kMaxBoundedSize) + " (0 means unbounded)");
  }
  std::size_t slots = slots_for(maxsize);
  std::size_t heap_begin = heap_begin_for(slots);
  std::size_t size = heap_begin + kInitialHeap;
  auto q = map_queue(unwrap(os::growing_memory_file("mproc-queue", size), "creating a Queue"));
  Header& h = *new (q->at(0)) Header{};
  h.magic = kMagic;
  h.kind = static_cast<std::uint32_t>(kind);
  h.slot_count = static_cast<std::uint32_t>(slots);
  h.fingerprint = fingerprint;
  h.maxsize = maxsize;
  h.slots_offset = kPage;
  h.heap_begin = heap_begin;
  h.heap_top = heap_begin;
  h.file_size.store(size, std::memory_order_relaxed);
  attach_slots(*q);
  for (std::size_t i = 0; i < slots; ++i) {
    new (&q->slots[i]) Slot{};
    q->slots[i].state.store(make_state(i, kEmpty, 0), std::memory_order_relaxed);
  }
  std::atomic_thread_fence(std::memory_order_release);
  return q;
}

bool queue_put(QueueCore& q, const Encoder& encoder, bool block, QueueTimeout timeout) {
  if (queue_closed(q)) throw UsageError("Queue: put() after close() in this process");
  if (!encoder.fds().empty()) {
    throw EncodeError(
        "Queue: an item cannot hold descriptors (a Connection, Lock, Queue, ...); send it over a Pipe, "
        "or give it to the Process when it starts");
  }
  bool fits_inline = encoder.buffers().empty() && encoder.bytes().size() <= kFingerprintBytes + kInlineBytes;
  BlockGuard item(q, fits_inline ? 0 : write_block(q, encoder));
  Header& h = *q.header;
  os::Deadline deadline(block ? timeout : QueueTimeout(std::chrono::nanoseconds(0)));
  int spins = block ? 0 : kSpins;
  bool waited_for_room = false;
  for (;;) {
    PutOutcome outcome = h.maxsize == 0 && h.spilled.load(std::memory_order_acquire) != 0
                             ? PutOutcome::spill
                             : put_in_ring(q, encoder, item.get());
    if (outcome == PutOutcome::spill && !waited_for_room && h.spilled.load(std::memory_order_acquire) == 0) {
      waited_for_room = true;
      wait_briefly_for_room(q);
      continue;
    }
    if (outcome == PutOutcome::spill) {
      if (item.get() == 0) item.reset(write_block(q, encoder));
      if (!spill(q, item.get())) continue;
      outcome = PutOutcome::put;
    }
    if (outcome == PutOutcome::put) {
      item.release();
      return true;
    }
    if (outcome == PutOutcome::dropped) {  // the block went with the claim: write the item anew
      item.release();
      if (!fits_inline) item.reset(write_block(q, encoder));
      continue;
    }
    if (spins < kSpins) {
      ++spins;
      os::cpu_relax();
      continue;
    }
    if (!sleep_on(h.space_freed, h.putters_asleep, deadline, [&] { return room_to_put(q); })) return false;
  }
}

bool queue_get(QueueCore& q, ItemSink sink, void* context, bool block, QueueTimeout timeout) {
  if (queue_closed(q)) throw UsageError("Queue: get() after close() in this process");
  Header& h = *q.header;
  os::Deadline deadline(block ? timeout : QueueTimeout(std::chrono::nanoseconds(0)));
  int spins = block ? 0 : kSpins;
  for (;;) {
    if (get_once(q, sink, context, spins >= kSpins) == GetOutcome::got) return true;
    if (spins < kSpins) {
      ++spins;
      os::cpu_relax();
      continue;
    }
    if (!sleep_on(h.items_posted, h.getters_asleep, deadline, [&] { return something_to_get(q); })) return false;
  }
}

std::size_t queue_size(const QueueCore& q) noexcept {
  const Header& h = *q.header;
  std::uint64_t head = h.head.load(std::memory_order_acquire);
  std::uint64_t tail = h.tail.load(std::memory_order_acquire);
  auto in_ring = static_cast<std::int64_t>(tail - head);
  return static_cast<std::size_t>(std::max<std::int64_t>(0, in_ring)) + h.spilled.load(std::memory_order_acquire);
}

std::size_t queue_maxsize(const QueueCore& q) noexcept { return q.header->maxsize; }

void queue_close(QueueCore& q) noexcept { q.closed_by.store(me(), std::memory_order_relaxed); }
bool queue_closed(const QueueCore& q) noexcept { return q.closed_by.load(std::memory_order_relaxed) == me(); }

void queue_task_done(QueueCore& q) {
  auto& unfinished = q.header->unfinished;
  std::int64_t count = unfinished.load(std::memory_order_acquire);
  do {
    if (count <= 0) throw UsageError("JoinableQueue: task_done() called more times than items were put");
  } while (!unfinished.compare_exchange_weak(count, count - 1, std::memory_order_acq_rel));
  if (count == 1) wake_sleepers(q.header->tasks_done, q.header->joiners_asleep);
}

bool queue_join(QueueCore& q, QueueTimeout timeout) {
  Header& h = *q.header;
  os::Deadline deadline(timeout);
  for (;;) {
    if (h.unfinished.load(std::memory_order_acquire) <= 0) return true;
    if (!sleep_on(h.tasks_done, h.joiners_asleep, deadline,
                  [&] { return h.unfinished.load(std::memory_order_acquire) <= 0; })) {
      return false;
    }
  }
}

void save_queue(Encoder& encoder, const QueueCore& q) { encoder.write_fd(q.fd.get()); }

std::shared_ptr<QueueCore> load_queue(Decoder& decoder, QueueKind kind, std::uint64_t fingerprint) {
  UniqueFd fd = decoder.take_fd();
  auto q = map_queue(std::move(fd));
  const Header& h = *q->header;
  if (h.magic != kMagic) decoder.fail("the descriptor is not a Queue's");
  if (h.kind != static_cast<std::uint32_t>(kind)) decoder.fail("the descriptor is a queue of another kind");
  if (h.fingerprint != fingerprint) decoder.fail("the Queue carries items of another type");
  if (!unwrap(os::sealed_against_shrinking(q->fd.get()), "checking a Queue")) {
    decoder.fail("the descriptor is not a Queue's (its file could shrink)");
  }
  attach_slots(*q);
  return q;
}

}  // namespace mproc::detail
