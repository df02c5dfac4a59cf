// mproc/detail/shared_block.hpp
//
// What every shared-memory handle (Lock, Event, Value, ...) holds: a
// reference to one block of a shared arena. Internal; see src/shared/arena.hpp.

#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "mproc/codec.hpp"

namespace mproc::detail {

// What a block holds, recorded in it so that a decoded reference is checked.
enum class BlockKind : std::uint32_t {
  lock = 1,
  rlock,
  semaphore,
  event,
  condition,
  barrier,
  value,
  pool_counters,
};

class SharedBlock;

// A new zero-filled block of at least `size` bytes, aligned to 64.
std::shared_ptr<SharedBlock> allocate_block(BlockKind kind, std::size_t size);

// The block's memory, as mapped in this process.
void* block_data(const SharedBlock& block) noexcept;
std::size_t block_size(const SharedBlock& block) noexcept;

// Encodes a reference to `block` (its arena's descriptor, the arena's id
// and the block's offset), and decodes one, checking that it names a block
// of `kind` with at least `size` bytes (DecodeError otherwise).
void save_block(Encoder& encoder, const SharedBlock& block);
std::shared_ptr<SharedBlock> load_block(Decoder& decoder, BlockKind kind, std::size_t size);

}  // namespace mproc::detail
