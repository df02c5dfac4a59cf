#include <limits>
#include <string>

#include "mproc/codec.hpp"
#include "codec/stack_guard.hpp"

namespace mproc {
namespace {

std::string hex(std::uint64_t value) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string text = "0x";
  for (int shift = 60; shift >= 0; shift -= 4) text += digits[(value >> shift) & 0xf];
  return text;
}

}  // namespace

void Decoder::fail(std::string_view what) const {
  std::string message = "mproc: cannot decode";
  if (!type_name_.empty()) {
    message += ' ';
    message += type_name_;
  }
  message += " at byte " + std::to_string(cur_ - begin_) + ": ";
  message += what;
  throw DecodeError(message);
}

void Decoder::fail_truncated(std::size_t wanted) const {
  fail("needs " + std::to_string(wanted) + " more bytes, " + std::to_string(remaining()) +
       " are left");
}

bool Decoder::read_flag(const char* what) {
  std::uint8_t byte = read_u8();
  if (byte > 1) fail(std::string(what) + " byte is " + std::to_string(byte) + ", not 0 or 1");
  return byte == 1;
}

std::size_t Decoder::read_count(std::size_t min_element_size) {
  std::uint64_t count = 0;
  read(count);
  // Each element takes at least min_element_size bytes, so a count the
  // remaining input cannot hold is rejected before anything is allocated.
  if (count > remaining() / min_element_size) {
    fail("count " + std::to_string(count) + " of elements of at least " +
         std::to_string(min_element_size) + " bytes each exceeds the " +
         std::to_string(remaining()) + " bytes left");
  }
  return static_cast<std::size_t>(count);
}

void Decoder::skip_padding(std::size_t alignment) {
  auto offset = static_cast<std::size_t>(cur_ - begin_);
  std::size_t padding = (alignment - offset % alignment) % alignment;
  for (std::byte b : read_view(padding)) {
    if (b != std::byte{0}) fail("padding byte is not zero");
  }
}

const std::byte* Decoder::read_block(std::size_t count, std::size_t element_size,
                                     std::size_t alignment) {
  if (count > std::numeric_limits<std::size_t>::max() / element_size) {
    fail("count " + std::to_string(count) + " of " + std::to_string(element_size) +
         "-byte elements overflows");
  }
  std::size_t size = count * element_size;
  bool out_of_band = size >= kMinOutOfBandBytes && read_flag("out-of-band flag");
  if (!out_of_band) {
    if (size == 0) return cur_;
    skip_padding(alignment);
    return take_bytes(size);
  }
  std::uint32_t index = 0;
  read(index);
  if (index >= buffers_.size()) {
    fail("out-of-band buffer " + std::to_string(index) + " but " +
         std::to_string(buffers_.size()) + " buffers arrived");
  }
  // Each buffer backs one range: reusing one would let a small message
  // expand into many copies of a large buffer.
  if (buffer_used_.empty()) buffer_used_.resize(buffers_.size());
  if (buffer_used_[index]) fail("out-of-band buffer " + std::to_string(index) + " used twice");
  buffer_used_[index] = true;
  if (buffers_[index].size() != size) {
    fail("out-of-band buffer " + std::to_string(index) + " holds " +
         std::to_string(buffers_[index].size()) + " bytes, not the " + std::to_string(size) +
         " its count needs");
  }
  return buffers_[index].data();
}

void Decoder::enter() {
  if (depth_ >= limits_.max_depth) {
    fail("nesting exceeds max_depth (" + std::to_string(limits_.max_depth) + ")");
  }
  if (detail::stack_nearly_exhausted()) fail("nesting too deep for this thread's stack");
  ++depth_;
}

std::size_t Decoder::memory_budget(std::size_t message_size, std::span<const ByteView> buffers,
                                   std::size_t factor) noexcept {
  constexpr std::size_t kFloor = std::size_t{1} << 20;
  constexpr std::size_t kMax = std::numeric_limits<std::size_t>::max();
  std::size_t input = message_size;
  for (ByteView b : buffers) input = b.size() > kMax - input ? kMax : input + b.size();
  if (factor != 0 && input > (kMax - kFloor) / factor) return kMax;
  return input * factor + kFloor;
}

void Decoder::fail_memory(std::size_t wanted) const {
  fail("the decoded value would take more memory than the message justifies (" +
       std::to_string(wanted) + " more bytes, " + std::to_string(memory_left_) +
       " left of DecodeLimits::memory_factor x the message size)");
}

void Decoder::expect_all_buffers_used() const {
  for (std::size_t i = 0; i < buffers_.size(); ++i) {
    if (i >= buffer_used_.size() || !buffer_used_[i]) {
      fail("out-of-band buffer " + std::to_string(i) + " arrived but the message does not use it");
    }
  }
}

void Decoder::fail_fingerprint(std::uint64_t found, std::uint64_t expected) const {
  if (remaining() < sizeof(found)) fail("message shorter than its 8-byte type fingerprint");
  fail("type fingerprint " + hex(found) + " does not match " + hex(expected) +
       ": the message holds a different type");
}

void Decoder::fail_left_over() const {
  fail(std::to_string(remaining()) + " bytes left over after the value");
}

UniqueFd Decoder::take_fd() {
  std::uint32_t index = 0;
  read(index);
  if (index >= fds_.size()) {
    fail("descriptor index " + std::to_string(index) + " but " + std::to_string(fds_.size()) +
         " descriptors arrived");
  }
  if (!fds_[index].valid()) fail("descriptor " + std::to_string(index) + " taken twice");
  return std::move(fds_[index]);
}

}  // namespace mproc
