#include <algorithm>
#include <limits>
#include <string>

#include "mproc/codec.hpp"
#include "codec/stack_guard.hpp"

namespace mproc {

EncodedMessage Encoder::take() {
  EncodedMessage message;
  message.size_ = offset();
  message.storage_ = std::move(storage_);
  message.buffers_ = std::move(buffers_);
  message.fds_ = std::move(fds_);
  begin_ = cur_ = end_ = nullptr;
  buffers_.clear();
  fds_.clear();
  depth_ = 0;
  return message;
}

void Encoder::grow(std::size_t size) {
  std::size_t used = offset();
  std::size_t capacity = static_cast<std::size_t>(end_ - begin_);
  std::size_t wanted = std::max({capacity * 2, used + size, std::size_t{256}});
  auto bigger = std::make_unique_for_overwrite<std::byte[]>(wanted);
  if (used != 0) std::memcpy(bigger.get(), begin_, used);
  storage_ = std::move(bigger);
  begin_ = storage_.get();
  cur_ = begin_ + used;
  end_ = begin_ + wanted;
}

void Encoder::pad_to(std::size_t alignment) {
  std::size_t padding = (alignment - offset() % alignment) % alignment;
  if (padding != 0) std::memset(reserve(padding), 0, padding);
}

void Encoder::write_block(const void* data, std::size_t size, std::size_t alignment) {
  // Blocks are aligned relative to the message start, so that the decoder
  // can build a vector straight from the received bytes. Large blocks carry
  // a flag: in band, or out of band (then only the buffer's index is here).
  if (size >= kMinOutOfBandBytes) {
    bool out_of_band = size >= options_.out_of_band_from;
    write_u8(out_of_band ? 1 : 0);
    if (out_of_band) {
      write(static_cast<std::uint32_t>(buffers_.size()));
      buffers_.emplace_back(static_cast<const std::byte*>(data), size);
      return;
    }
  }
  if (size == 0) return;
  pad_to(alignment);
  write_raw(data, size);
}

void Encoder::enter() {
  if (depth_ >= DecodeLimits{}.max_depth) {
    throw EncodeError("mproc: value nests deeper than " + std::to_string(DecodeLimits{}.max_depth) +
                      " levels, more than a decoder accepts");
  }
  if (detail::stack_nearly_exhausted()) throw EncodeError("mproc: value nests too deep for this thread's stack");
  ++depth_;
}

void Encoder::write_long_double(long double value) {
  // x86-64 keeps 80 significant bits in 16 bytes; the other 6 are whatever
  // was in memory, which must not go to another process.
  constexpr std::size_t significant = std::numeric_limits<long double>::digits == 64 ? 10 : sizeof(value);
  std::byte* out = reserve(sizeof(value));
  std::memset(out, 0, sizeof(value));
  std::memcpy(out, &value, significant);
}

void Encoder::patch_length(std::size_t at, std::size_t length) {
  if (length > std::numeric_limits<std::uint32_t>::max()) {
    throw EncodeError("mproc: a serialize()/save() value is larger than 4 GiB");
  }
  auto length32 = static_cast<std::uint32_t>(length);
  std::memcpy(begin_ + at, &length32, sizeof(length32));
}

void Encoder::write_fd(int fd) {
  if (fd < 0) throw EncodeError("mproc: cannot encode an empty UniqueFd");
  write(static_cast<std::uint32_t>(fds_.size()));
  fds_.push_back(fd);
}

}  // namespace mproc
