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


#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <new>
#include <string>

#include "queue/heap.hpp"
#include "queue/layout.hpp"

namespace mproc::detail {
namespace {

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

