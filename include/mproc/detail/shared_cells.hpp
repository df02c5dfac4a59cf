// mproc/detail/shared_cells.hpp
//
// The memory under Value, Array, RawValue and RawArray: `count` cells of a
// trivially copyable type in one arena block, after a small header that
// records the count and the cell size, so that a decoded reference to
// cells of another type or length is refused. Internal.

#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "mproc/codec.hpp"
#include "mproc/detail/shared_block.hpp"

namespace mproc::detail {

// What a handle holds: the block (null for zero cells) and where the cells
// are mapped in this process.
struct Cells {
  std::shared_ptr<SharedBlock> block;
  void* data = nullptr;
  std::size_t count = 0;
};

// Zero-filled cells. std::length_error if `count` cells cannot exist.
Cells allocate_cells(std::size_t cell_size, std::size_t count);

// Encodes the count and a reference to the block; decodes them, checking
// the header against `cell_size` (DecodeError otherwise).
void save_cells(Encoder& encoder, const Cells& cells);
Cells load_cells(Decoder& decoder, std::size_t cell_size);

// std::out_of_range naming `what`, the index and the size.
[[noreturn]] void throw_index_out_of_range(const char* what, std::size_t index, std::size_t size);

// Python's c_char array: `value` is the bytes before the first NUL, and
// setting it copies the bytes and a NUL after them if there is room;
// `raw` is every byte. Setting either with more bytes than the array holds
// is std::length_error ("byte string too long") and changes nothing.
std::string c_string_value(std::span<const char> cells);
void set_c_string_value(std::span<char> cells, std::string_view value);
void set_c_string_raw(std::span<char> cells, std::string_view value);

}  // namespace mproc::detail
