// mproc/codec.hpp
//
// The codec turns values into bytes and back: what pickle is to Python's
// multiprocessing. Unlike pickle, decoding never runs code chosen by the
// sender, and every length is checked against the bytes present before
// anything is allocated.
//
// What can cross:
//   * arithmetic types, bool, enums with a fixed underlying type;
//   * std::string (any basic_string), vector, array, deque, list, set,
//     multiset, unordered_set, unordered_multiset, map, multimap,
//     unordered_map, unordered_multimap, pair, tuple, optional, variant,
//     monostate, chrono durations and time points;
//   * aggregates (structs with public fields and no base class or C array),
//     with no code needed;
//   * types with serialize(Archive&), or save(Archive&) const and
//     load(Archive&), as members or free functions, in cereal's convention:
//         template <class Archive>
//         void serialize(Archive& ar) { ar(name, size, tags); }
//     (befriend mproc::access to keep them private);
//   * function pointers and mproc::Function (function.hpp), by reference;
//   * UniqueFd, carried out of band: the encoder lists the descriptors and the
//     transport sends them with SCM_RIGHTS; the decoder takes them.
//
// What cannot cross is a compile error that says why: raw pointers,
// capturing lambdas, std::function, smart pointers, views, unions.
//
// A message is the type's 64-bit fingerprint followed by the value. Numbers
// are in the machine's own byte order: messages are for processes on one
// machine. Contiguous ranges of raw-byte types (numbers, enums, and structs
// of those without padding) are copied with one memcpy each way.
//
// Large ranges can travel out of band, as pickle protocol 5's buffers do: an
// Encoder built with EncodeOptions::out_of_band_from lists them in buffers()
// (borrowed from the value, not copied) and the transport sends them beside
// the message, so that the only copy is the decoder's. By default everything
// is in band and the message bytes stand alone.
//
// Example:
//
//   struct Point { double x, y; std::string label; };
//
//   mproc::Encoder encoder;                       // reuse it: no allocation
//   auto bytes = encoder.encode(Point{1, 2, "a"});  // once it has grown
//   Point p = mproc::decode<Point>(bytes);

#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/detail/code_ref.hpp"
#include "mproc/detail/codec_traits.hpp"
#include "mproc/errors.hpp"
#include "mproc/unique_fd.hpp"

namespace mproc {

// transferable
//
// Satisfied by types the codec can encode and decode.
template <class T>
concept transferable = detail::supported<std::remove_cvref_t<T>>();

// type_fingerprint<T>()
//
// The 64-bit fingerprint that heads every message holding a T.
template <class T>
constexpr std::uint64_t type_fingerprint() {
  return detail::fingerprint_v<std::remove_cvref_t<T>>;
}

// EncodeOptions
//
// How an Encoder lays out messages.
struct EncodeOptions {
  // Contiguous ranges of at least this many bytes (and at least
  // kMinOutOfBandBytes) go out of band; by default none do.
  std::size_t out_of_band_from = std::numeric_limits<std::size_t>::max();
};

// Ranges smaller than this are always in band.
inline constexpr std::size_t kMinOutOfBandBytes = 4096;

// A borrowed range of bytes: an out-of-band buffer.
using ByteView = std::span<const std::byte>;

// DecodeLimits
//
// Bounds the decoder enforces beyond the input's own size.
struct DecodeLimits {
  // The deepest nesting of structs and serialize() types inside one another
  // (a tree decoded from a recursive type). The encoder enforces the default.
  // Whatever the limit, nesting stops with a DecodeError before the thread's
  // stack runs out.
  std::size_t max_depth = 1000;

  // The memory the decoded value's containers and strings may take: this
  // many times the size of the message (with its out-of-band buffers), plus
  // 1 MiB. It bounds what a message of small elements that expand in memory
  // (say, a vector of empty std::optional<std::array<char, 65536>>) can make
  // the receiver allocate.
  std::size_t memory_factor = 64;

  // Whether plain function pointers are accepted. A reference to one is
  // checked to be the start of a function of the named module, but C++ keeps
  // no record of a function's signature to check it against: turn this off
  // where the sender is not trusted to name only functions of the expected
  // type. Functions sent as lambdas, function objects or mproc::fn<&f> are
  // checked against their signature and are not affected.
  bool allow_function_pointers = true;
};

// EncodedMessage
//
// A message, with the out-of-band buffers and descriptors it refers to. The
// buffers and descriptors are borrowed from the value that was encoded: they
// stay valid while it lives. mproc::encode() puts nothing out of band.
class EncodedMessage {
 public:
  EncodedMessage() = default;
  std::span<const std::byte> bytes() const noexcept { return {storage_.get(), size_}; }
  std::span<const ByteView> buffers() const noexcept { return buffers_; }
  std::span<const int> fds() const noexcept { return fds_; }

 private:
  friend class Encoder;
  std::unique_ptr<std::byte[]> storage_;
  std::size_t size_ = 0;
  std::vector<ByteView> buffers_;
  std::vector<int> fds_;
};

// Encoder
//
// Encodes values into a buffer it keeps between messages, so that a reused
// Encoder allocates nothing once it has grown to the largest message. It is
// also the archive that serialize() and save() receive when a value is
// written: `ar(a, b, c)`, `ar & a` and `ar << a` all write.
class Encoder {
 public:
  static constexpr bool is_saving = true;
  static constexpr bool is_loading = false;

  Encoder() noexcept = default;
  explicit Encoder(EncodeOptions options) noexcept : options_(options) {}
  Encoder(Encoder&&) noexcept = default;
  Encoder& operator=(Encoder&&) noexcept = default;

  // Encoder::encode()
  //
  // Replaces the contents with the message for `value`: its fingerprint, then
  // its encoding. Returns the bytes, valid until the next change. Throws
  // EncodeError or NotTransferableError, leaving the encoder empty.
  template <class T>
  std::span<const std::byte> encode(const T& value);

  // Encoder::bytes()
  //
  // The message encoded so far.
  std::span<const std::byte> bytes() const noexcept {
    return {begin_, static_cast<std::size_t>(cur_ - begin_)};
  }

  // Encoder::buffers()
  //
  // The out-of-band buffers the message refers to, in order, borrowed from the value.
  std::span<const ByteView> buffers() const noexcept { return buffers_; }

  // Encoder::fds()
  //
  // The descriptors the message refers to, in order, borrowed from the value.
  std::span<const int> fds() const noexcept { return fds_; }

  // Encoder::take()
  //
  // Moves the message out; the encoder is empty afterwards.
  EncodedMessage take();

  // Encoder::clear()
  //
  // Empties the encoder, keeping its buffer.
  void clear() noexcept {
    cur_ = begin_;
    buffers_.clear();
    fds_.clear();
    depth_ = 0;
  }

  // The archive interface.
  template <class... T>
  Encoder& operator()(const T&... values) {
    (write(values), ...);
    return *this;
  }
  template <class T>
  Encoder& operator&(const T& value) {
    write(value);
    return *this;
  }
  template <class T>
  Encoder& operator<<(const T& value) {
    write(value);
    return *this;
  }

  // Encoder::write()
  //
  // Appends the encoding of one value (no fingerprint).
  template <class T>
  void write(const T& value);

  // Encoder::write_raw()
  //
  // Appends `size` bytes as they are.
  void write_raw(const void* data, std::size_t size) {
    if (size == 0) return;
    std::memcpy(reserve(size), data, size);
  }

  // Encoder::write_fd()
  //
  // Lists `fd` (borrowed) among the message's descriptors and writes its index.
  void write_fd(int fd);

 private:
  struct DepthGuard;

  std::byte* reserve(std::size_t size) {
    if (size > static_cast<std::size_t>(end_ - cur_)) grow(size);
    std::byte* at = cur_;
    cur_ += size;
    return at;
  }
  void grow(std::size_t size);
  void write_u8(std::uint8_t v) { *reserve(1) = static_cast<std::byte>(v); }
  void write_count(std::size_t n) { write(static_cast<std::uint64_t>(n)); }
  void pad_to(std::size_t alignment);
  void write_long_double(long double value);
  void write_block(const void* data, std::size_t size, std::size_t alignment);
  void enter();
  std::size_t offset() const noexcept { return static_cast<std::size_t>(cur_ - begin_); }
  void patch_length(std::size_t at, std::size_t length);

  template <class T>
  void write_sequence(const T& sequence);
  template <class T>
  void write_custom(const T& value);

  std::unique_ptr<std::byte[]> storage_;
  std::byte* begin_ = nullptr;
  std::byte* cur_ = nullptr;
  std::byte* end_ = nullptr;
  std::vector<ByteView> buffers_;
  std::vector<int> fds_;
  std::size_t depth_ = 0;
  EncodeOptions options_;
};

// Decoder
//
// Decodes one message from bytes it does not own. It is also the archive that
// serialize() and load() receive when a value is read: `ar(a, b, c)`,
// `ar & a` and `ar >> a` all read. Every failure is a DecodeError naming the
// position and what was wrong.
class Decoder {
 public:
  static constexpr bool is_saving = false;
  static constexpr bool is_loading = true;

  // Decodes `message`; `buffers` and `fds` are the out-of-band buffers and
  // descriptors that arrived with it. Descriptors the message refers to are
  // moved out of `fds` as they are decoded; the rest stay where they are.
  explicit Decoder(std::span<const std::byte> message, std::span<const ByteView> buffers = {},
                   std::span<UniqueFd> fds = {}, DecodeLimits limits = {}) noexcept
      : begin_(message.data()),
        cur_(message.data()),
        end_(message.data() + message.size()),
        buffers_(buffers),
        fds_(fds),
        limits_(limits),
        memory_left_(memory_budget(message.size(), buffers, limits.memory_factor)) {}

  // Decoder::decode<T>()
  //
  // Checks the fingerprint, decodes a T and checks that no bytes are left.
  template <class T>
  T decode();

  // The archive interface.
  template <class... T>
  Decoder& operator()(T&... values) {
    (read(values), ...);
    return *this;
  }
  template <class T>
  Decoder& operator&(T& value) {
    read(value);
    return *this;
  }
  template <class T>
  Decoder& operator>>(T& value) {
    read(value);
    return *this;
  }

  // Decoder::read()
  //
  // Decodes one value (no fingerprint) into `value`.
  template <class T>
  void read(T& value);

  // Decoder::read_raw()
  //
  // Copies the next `size` bytes as they are.
  void read_raw(void* out, std::size_t size) {
    if (size == 0) return;
    std::memcpy(out, take_bytes(size), size);
  }

  // Decoder::read_view()
  //
  // The next `size` bytes, without copying; valid while the input is.
  std::span<const std::byte> read_view(std::size_t size) { return {take_bytes(size), size}; }

  // Decoder::take_fd()
  //
  // Reads a descriptor index and takes that descriptor.
  UniqueFd take_fd();

  // Decoder::remaining()
  //
  // Bytes not yet read (within the value being read, for a serialize() type).
  std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - cur_); }

  // Decoder::limits()
  //
  // What this decoder accepts.
  const DecodeLimits& limits() const noexcept { return limits_; }

  // Decoder::charge_memory()
  //
  // Accounts for `bytes` of memory the decoded value is about to take, and
  // fails once the message's budget (DecodeLimits::memory_factor) is spent.
  // The codec calls it for containers and strings; a load() that allocates
  // in proportion to what it reads should call it too.
  void charge_memory(std::size_t bytes) {
    if (bytes > memory_left_) fail_memory(bytes);
    memory_left_ -= bytes;
  }

  // Decoder::fail()
  //
  // Throws DecodeError with `what`, the position and the type being decoded.
  [[noreturn]] void fail(std::string_view what) const;

 private:
  struct DepthGuard;

  const std::byte* take_bytes(std::size_t size) {
    if (size > remaining()) fail_truncated(size);
    const std::byte* at = cur_;
    cur_ += size;
    return at;
  }
  [[noreturn]] void fail_truncated(std::size_t wanted) const;
  [[noreturn]] void fail_memory(std::size_t wanted) const;
  static std::size_t memory_budget(std::size_t message_size, std::span<const ByteView> buffers,
                                   std::size_t factor) noexcept;
  std::uint8_t read_u8() { return static_cast<std::uint8_t>(*take_bytes(1)); }
  bool read_flag(const char* what);
  std::size_t read_count(std::size_t min_element_size);
  void skip_padding(std::size_t alignment);
  const std::byte* read_block(std::size_t count, std::size_t element_size, std::size_t alignment);
  void enter();
  void expect_fingerprint(std::uint64_t expected) {
    std::uint64_t found = 0;
    if (remaining() < sizeof(found)) fail_fingerprint(found, expected);
    std::memcpy(&found, cur_, sizeof(found));
    if (found != expected) fail_fingerprint(found, expected);
    cur_ += sizeof(found);
  }
  [[noreturn]] void fail_fingerprint(std::uint64_t found, std::uint64_t expected) const;
  void expect_end() const {
    if (cur_ != end_) fail_left_over();
    if (!buffers_.empty()) expect_all_buffers_used();
  }
  void expect_all_buffers_used() const;
  [[noreturn]] void fail_left_over() const;

  template <class T>
  void read_sequence(T& sequence);
  template <class T>
  void read_set(T& set);
  template <class T>
  void read_map(T& map);
  template <class T>
  void read_variant(T& variant);
  template <class T>
  void read_custom(T& value);

  const std::byte* begin_;
  const std::byte* cur_;
  const std::byte* end_;
  std::span<const ByteView> buffers_;
  std::vector<bool> buffer_used_;  // sized when the first buffer is used
  std::span<UniqueFd> fds_;
  DecodeLimits limits_;
  std::size_t memory_left_;
  std::size_t depth_ = 0;
  std::string_view type_name_;
};

// encode()
//
// The message for `value`, in a buffer of its own. Reuse an Encoder instead
// where messages are many.
template <class T>
EncodedMessage encode(const T& value) {
  Encoder encoder;
  encoder.encode(value);
  return encoder.take();
}

// decode<T>()
//
// Decodes the T in `message`. Throws DecodeError if `message` is not exactly
// the encoding of a T, NotTransferableError for a function reference that does
// not resolve here.
template <class T>
T decode(std::span<const std::byte> message, DecodeLimits limits = {}) {
  return Decoder(message, {}, {}, limits).decode<T>();
}

// decode<T>() with descriptors
//
// As above, for a message that arrived with descriptors: those it refers to
// are moved out of `fds`.
template <class T>
T decode(std::span<const std::byte> message, std::span<UniqueFd> fds, DecodeLimits limits = {}) {
  return Decoder(message, {}, fds, limits).decode<T>();
}

// decode<T>() with out-of-band buffers and descriptors
//
// As above, for a message from an Encoder that put ranges out of band.
template <class T>
T decode(std::span<const std::byte> message, std::span<const ByteView> buffers,
         std::span<UniqueFd> fds, DecodeLimits limits = {}) {
  return Decoder(message, buffers, fds, limits).decode<T>();
}

}  // namespace mproc

#include "mproc/detail/codec_impl.hpp"
