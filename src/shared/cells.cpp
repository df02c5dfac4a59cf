// The cells under Value and Array: a header (count, cell size) and the
// cells, in one arena block.

#include "mproc/detail/shared_cells.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "mproc/errors.hpp"

namespace mproc::detail {
namespace {

struct CellsHeader {
  std::uint64_t count;
  std::uint64_t cell_size;
};

// 64, so that cells of any alignment up to a cache line stay aligned.
constexpr std::size_t kCellsOffset = 64;

// Beyond this no arena can be mapped anyway; keeps count * size exact.
constexpr std::uint64_t kMaxCellBytes = std::uint64_t{1} << 46;

std::size_t block_bytes_for(std::size_t cell_size, std::uint64_t count) {
  if (cell_size == 0 || count > kMaxCellBytes / cell_size) return 0;
  return kCellsOffset + static_cast<std::size_t>(count) * cell_size;
}

Cells cells_of(std::shared_ptr<SharedBlock> block, std::size_t count) {
  void* data = static_cast<std::byte*>(block_data(*block)) + kCellsOffset;
  return Cells{std::move(block), data, count};
}

}  // namespace

Cells allocate_cells(std::size_t cell_size, std::size_t count) {
  if (count == 0) return Cells{};
  std::size_t bytes = block_bytes_for(cell_size, count);
  if (bytes == 0) {
    throw std::length_error("mproc: " + std::to_string(count) + " shared cells of " + std::to_string(cell_size) +
                            " bytes are more than can be mapped");
  }
  auto block = allocate_block(BlockKind::value, bytes);
  auto* header = static_cast<CellsHeader*>(block_data(*block));
  header->count = count;
  header->cell_size = cell_size;
  return cells_of(std::move(block), count);
}

void save_cells(Encoder& encoder, const Cells& cells) {
  encoder.write(static_cast<std::uint64_t>(cells.count));
  if (cells.count != 0) save_block(encoder, *cells.block);
}

Cells load_cells(Decoder& decoder, std::size_t cell_size) {
  std::uint64_t count = 0;
  decoder.read(count);
  if (count == 0) return Cells{};
  std::size_t bytes = block_bytes_for(cell_size, count);
  if (bytes == 0) throw DecodeError("mproc: a shared array's length is impossibly large");
  auto block = load_block(decoder, BlockKind::value, bytes);
  const auto* header = static_cast<const CellsHeader*>(block_data(*block));
  if (header->count != count || header->cell_size != cell_size) {
    throw DecodeError("mproc: a shared value or array reference names cells of another type or length");
  }
  return cells_of(std::move(block), static_cast<std::size_t>(count));
}

void throw_index_out_of_range(const char* what, std::size_t index, std::size_t size) {
  throw std::out_of_range(std::string("mproc: ") + what + " index " + std::to_string(index) +
                          " out of range (size " + std::to_string(size) + ")");
}

std::string c_string_value(std::span<const char> cells) {
  auto end = std::find(cells.begin(), cells.end(), '\0');
  return std::string(cells.begin(), end);
}

namespace {
void check_fits(std::span<char> cells, std::string_view value) {
  if (value.size() > cells.size()) throw std::length_error("byte string too long");
}
}  // namespace

void set_c_string_value(std::span<char> cells, std::string_view value) {
  check_fits(cells, value);
  std::copy(value.begin(), value.end(), cells.begin());
  if (value.size() < cells.size()) cells[value.size()] = '\0';
}

void set_c_string_raw(std::span<char> cells, std::string_view value) {
  check_fits(cells, value);
  std::copy(value.begin(), value.end(), cells.begin());
}

}  // namespace mproc::detail
