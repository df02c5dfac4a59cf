// Shared arenas: memfd-backed memory, mapped by every process holding a
// handle to something in it, out of which small objects (locks, events,
// values) are carved, 64-byte aligned, in power-of-two size classes. An
// object larger than the largest class gets an arena of its own.
//
// Arena layout: a header page (magic, id, size, the allocator's lock, the
// bump offset, one free list per class), then blocks. A block is a 64-byte
// header (reference count, kind, size) and its payload.
//
// Lifetime. A block counts the processes' references to it: one per
// process holding handles to it, plus one per encoded reference in flight.
// A forked child adds one for every block its parent held (at fork), and
// gives them back on its exit path; the last reference frees the block.
// A process killed outright never gives its references back: its blocks
// stay allocated while the arena lives (bounded, and gone with the last
// process that maps the arena: memfds leave nothing behind).
//
// The allocator's lock is a lock word (lock_word.hpp); every change it
// guards is a single store, so a process dying in the middle leaves the
// arena consistent, at worst with one block leaked, and the next process
// simply takes the lock over.

#pragma once

#include "mproc/detail/shared_block.hpp"

namespace mproc::detail {

// For tests: the number of arenas this process has mapped, and the bytes of
// blocks allocated (not free) in the arena where it carves small blocks.
std::size_t mapped_arena_count();
std::size_t allocated_bytes_in_current_arena();

}  // namespace mproc::detail
