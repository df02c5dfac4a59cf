// Connections: framed messages over a Unix stream socket.
//
// A frame is a 16-byte header (body size, descriptor count, out-of-band
// buffer count), the sizes of the out-of-band buffers, then the payload: the
// body, and each buffer aligned to 16 bytes from the payload's start. The
// descriptors travel with the header's first byte (SCM_RIGHTS), so they
// arrive with the read that first touches it, in frame order; received
// descriptors wait in a queue until their frame is parsed.
//
// Sending is one sendmsg of all the pieces when the socket has room.
// Receiving reads greedily into a 64 KiB buffer, so a small message costs
// one system call; a payload larger than the buffer is read straight into
// its destination, in chunks that grow only as bytes really arrive, so a
// header claiming a huge size allocates nothing it does not receive.

#include "mproc/connection.hpp"

#include <algorithm>
#include <cstring>
#include <deque>
#include <limits>
#include <string>

#include "common/raise.hpp"
#include "os/io.hpp"
#include "os/poll.hpp"
#include "os/socket.hpp"

namespace mproc {
namespace detail {

constexpr std::size_t kReceiveBufferSize = 64 * 1024;
constexpr std::size_t kOutOfBandFrom = 64 * 1024;
constexpr std::size_t kPayloadAlignment = 16;
constexpr std::size_t kMaxBuffersPerFrame = 1 << 16;
// A large payload is read in chunks starting at this size, doubling as data arrives.
constexpr std::size_t kFirstLargeChunk = 1 << 20;

struct FrameHeader {
  std::uint64_t body_size;
  std::uint32_t fd_count;
  std::uint32_t buffer_count;
};
static_assert(sizeof(FrameHeader) == 16);

std::size_t padding_before(std::size_t offset) {
  return (kPayloadAlignment - offset % kPayloadAlignment) % kPayloadAlignment;
}

struct ConnectionState {
  UniqueFd socket;
  bool readable = true;
  bool writable = true;
  Encoder encoder{EncodeOptions{.out_of_band_from = kOutOfBandFrom}};

  // Receiving: bytes read but not yet consumed are buffer[start, end).
  std::unique_ptr<std::byte[]> buffer;
  std::size_t start = 0;
  std::size_t end = 0;
  std::deque<UniqueFd> arrived_fds;
  // Room for the descriptors one read may bring, reused by every read.
  std::vector<UniqueFd> incoming_fds = std::vector<UniqueFd>(os::kMaxFdsPerMessage);
  bool broken = false;  // the stream lost its framing: nothing more can be trusted

  // The message being decoded (between receive_message and release_message).
  std::vector<UniqueFd> message_fds;
  std::vector<ByteView> message_buffers;
  std::unique_ptr<std::byte[]> large_payload;
  std::size_t consume_on_release = 0;

  std::size_t buffered() const { return end - start; }
};

}  // namespace detail

namespace {

using detail::ConnectionState;
using detail::FrameHeader;

[[noreturn]] void throw_broken(ConnectionState& s, const std::string& what) {
  s.broken = true;
  throw DecodeError("mproc: Connection: " + what + "; the connection can no longer be read");
}

// Reads what the socket has into the buffer's free tail; 0 at end of file.
std::size_t fill_some(ConnectionState& s) {
  if (!s.buffer) s.buffer = std::make_unique_for_overwrite<std::byte[]>(detail::kReceiveBufferSize);
  if (s.end == detail::kReceiveBufferSize) {
    std::memmove(s.buffer.get(), s.buffer.get() + s.start, s.buffered());
    s.end -= s.start;
    s.start = 0;
  }
  std::size_t fd_count = 0;
  auto got = os::receive_with_fds(
      s.socket.get(), {s.buffer.get() + s.end, detail::kReceiveBufferSize - s.end}, s.incoming_fds, fd_count);
  detail::check(got.error, "Connection receive");
  for (std::size_t i = 0; i < fd_count; ++i) s.arrived_fds.push_back(std::move(s.incoming_fds[i]));
  s.end += got.value;
  return got.value;
}

[[noreturn]] void throw_eof(const ConnectionState& s) {
  if (s.buffered() == 0) throw EOFError("mproc: Connection: the other end closed the connection");
  throw EOFError("mproc: Connection: the other end closed the connection in the middle of a message");
}

// Makes at least `size` (<= the buffer size) bytes available at buffer + start.
void fill_until(ConnectionState& s, std::size_t size) {
  if (!s.buffer) s.buffer = std::make_unique_for_overwrite<std::byte[]>(detail::kReceiveBufferSize);
  if (s.start + size > detail::kReceiveBufferSize) {
    std::memmove(s.buffer.get(), s.buffer.get() + s.start, s.buffered());
    s.end -= s.start;
    s.start = 0;
  }
  while (s.buffered() < size) {
    if (fill_some(s) == 0) throw_eof(s);
  }
}

// Copies the next `size` bytes of the stream to `out`: first what is
// buffered, then straight from the socket.
void read_stream(ConnectionState& s, std::byte* out, std::size_t size) {
  std::size_t from_buffer = std::min(size, s.buffered());
  if (from_buffer != 0) std::memcpy(out, s.buffer.get() + s.start, from_buffer);
  s.start += from_buffer;
  std::size_t done = from_buffer;
  while (done < size) {
    std::size_t fd_count = 0;
    auto got = os::receive_with_fds(s.socket.get(), {out + done, size - done}, s.incoming_fds, fd_count);
    detail::check(got.error, "Connection receive");
    for (std::size_t i = 0; i < fd_count; ++i) s.arrived_fds.push_back(std::move(s.incoming_fds[i]));
    if (got.value == 0) throw EOFError("mproc: Connection: the other end closed the connection in the middle of a message");
    done += got.value;
  }
}

// Discards the next `size` bytes of the stream.
void skip_stream(ConnectionState& s, std::size_t size) {
  std::vector<std::byte> scratch(std::min<std::size_t>(size, 1 << 20));
  while (size != 0) {
    std::size_t n = std::min(size, scratch.size());
    read_stream(s, scratch.data(), n);
    size -= n;
  }
}

struct Frame {
  std::size_t body_size = 0;
  std::size_t payload_size = 0;
  std::vector<std::size_t> buffer_sizes;
  std::size_t fd_count = 0;
};

std::size_t checked_add(ConnectionState& s, std::size_t a, std::size_t b) {
  if (a > std::numeric_limits<std::size_t>::max() - b) throw_broken(s, "frame sizes overflow");
  return a + b;
}

// Reads and checks a frame's header and buffer table, and takes its descriptors.
Frame read_frame_header(ConnectionState& s) {
  if (s.broken) throw DecodeError("mproc: Connection: an earlier framing error left it unreadable");
  fill_until(s, sizeof(FrameHeader));
  FrameHeader header;
  std::memcpy(&header, s.buffer.get() + s.start, sizeof(header));
  if (header.fd_count > os::kMaxFdsPerMessage) throw_broken(s, "a frame claims too many descriptors");
  if (header.buffer_count > detail::kMaxBuffersPerFrame) throw_broken(s, "a frame claims too many buffers");
  std::size_t table_size = sizeof(std::uint64_t) * header.buffer_count;
  if (sizeof(header) + table_size > detail::kReceiveBufferSize) throw_broken(s, "frame header too large");
  fill_until(s, sizeof(header) + table_size);

  Frame frame;
  frame.body_size = static_cast<std::size_t>(header.body_size);
  frame.fd_count = header.fd_count;
  frame.payload_size = frame.body_size;
  const std::byte* table = s.buffer.get() + s.start + sizeof(header);
  for (std::uint32_t i = 0; i < header.buffer_count; ++i) {
    std::uint64_t size;
    std::memcpy(&size, table + i * sizeof(size), sizeof(size));
    frame.buffer_sizes.push_back(static_cast<std::size_t>(size));
    std::size_t aligned = checked_add(s, frame.payload_size, detail::padding_before(frame.payload_size));
    frame.payload_size = checked_add(s, aligned, static_cast<std::size_t>(size));
  }
  s.start += sizeof(header) + table_size;

  if (s.arrived_fds.size() < frame.fd_count) throw_broken(s, "a frame's descriptors did not arrive");
  s.message_fds.clear();
  for (std::size_t i = 0; i < frame.fd_count; ++i) {
    s.message_fds.push_back(std::move(s.arrived_fds.front()));
    s.arrived_fds.pop_front();
  }
  return frame;
}

// Reads a payload too large for the receive buffer into memory that grows
// only as fast as bytes arrive.
std::byte* read_large_payload(ConnectionState& s, std::size_t size) {
  std::size_t capacity = std::min(size, detail::kFirstLargeChunk);
  auto storage = std::make_unique_for_overwrite<std::byte[]>(capacity);
  std::size_t done = 0;
  while (done < size) {
    if (done == capacity) {
      std::size_t bigger = std::min(size, capacity * 2);
      auto grown = std::make_unique_for_overwrite<std::byte[]>(bigger);
      std::memcpy(grown.get(), storage.get(), done);
      storage = std::move(grown);
      capacity = bigger;
    }
    std::size_t chunk = capacity - done;
    read_stream(s, storage.get() + done, chunk);
    done += chunk;
  }
  s.large_payload = std::move(storage);
  return s.large_payload.get();
}

const char* direction_error(bool receiving) {
  return receiving ? "mproc: Connection: this end only sends (the send end of a one-way Pipe)"
                   : "mproc: Connection: this end only receives (the receive end of a one-way Pipe)";
}

}  // namespace

Connection Connection::from_socket(UniqueFd socket, bool readable, bool writable) {
  Connection c;
  c.state_ = std::make_shared<ConnectionState>();
  c.state_->socket = std::move(socket);
  c.state_->readable = readable;
  c.state_->writable = writable;
  return c;
}

ConnectionState& Connection::state(const char* operation) const {
  if (closed()) throw UsageError(std::string("mproc: Connection::") + operation + " on a closed connection");
  return *state_;
}

bool Connection::closed() const noexcept { return !state_ || !state_->socket.valid(); }
bool Connection::readable() const noexcept { return !closed() && state_->readable; }
bool Connection::writable() const noexcept { return !closed() && state_->writable; }
bool Connection::has_buffered_data() const noexcept { return !closed() && state_->buffered() != 0; }
int Connection::fileno() const { return state("fileno").socket.get(); }

void Connection::close() {
  if (state_) state_->socket.reset();
}

Encoder& Connection::prepare_send() {
  ConnectionState& s = state("send");
  if (!s.writable) throw UsageError(direction_error(false));
  return s.encoder;
}

void Connection::send_encoded() {
  ConnectionState& s = *state_;
  const Encoder& encoder = s.encoder;
  if (encoder.fds().size() > os::kMaxFdsPerMessage) {
    throw EncodeError("mproc: a message may carry at most " + std::to_string(os::kMaxFdsPerMessage) +
                      " descriptors");
  }
  std::span<const ByteView> buffers = encoder.buffers();
  std::vector<std::byte> head(sizeof(FrameHeader) + sizeof(std::uint64_t) * buffers.size());
  FrameHeader header{encoder.bytes().size(), static_cast<std::uint32_t>(encoder.fds().size()),
                     static_cast<std::uint32_t>(buffers.size())};
  std::memcpy(head.data(), &header, sizeof(header));

  static constexpr std::byte kZeros[detail::kPayloadAlignment] = {};
  std::vector<std::span<const std::byte>> pieces{head, encoder.bytes()};
  std::size_t offset = encoder.bytes().size();
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    std::uint64_t size = buffers[i].size();
    std::memcpy(head.data() + sizeof(header) + i * sizeof(size), &size, sizeof(size));
    std::size_t pad = detail::padding_before(offset);
    pieces.emplace_back(kZeros, pad);
    pieces.push_back(buffers[i]);
    offset += pad + buffers[i].size();
  }
  detail::check(os::send_pieces(s.socket.get(), pieces, encoder.fds()), "Connection::send");
}

void Connection::send_bytes(std::span<const std::byte> data, std::size_t offset) {
  if (offset > data.size()) throw UsageError("mproc: Connection::send_bytes: offset beyond the data");
  send_bytes(data, offset, data.size() - offset);
}

void Connection::send_bytes(std::span<const std::byte> data, std::size_t offset, std::size_t size) {
  ConnectionState& s = state("send_bytes");
  if (!s.writable) throw UsageError(direction_error(false));
  if (offset > data.size()) throw UsageError("mproc: Connection::send_bytes: offset beyond the data");
  if (size > data.size() - offset) throw UsageError("mproc: Connection::send_bytes: size beyond the data");
  FrameHeader header{size, 0, 0};
  std::span<const std::byte> pieces[] = {std::as_bytes(std::span(&header, 1)), data.subspan(offset, size)};
  detail::check(os::send_pieces(s.socket.get(), pieces, {}), "Connection::send_bytes");
}

detail::ReceivedMessage Connection::receive_message() {
  ConnectionState& s = state("recv");
  if (!s.readable) throw UsageError(direction_error(true));
  Frame frame = read_frame_header(s);
  const std::byte* payload;
  if (frame.payload_size <= detail::kReceiveBufferSize) {
    fill_until(s, frame.payload_size);
    payload = s.buffer.get() + s.start;
    s.consume_on_release = frame.payload_size;
  } else {
    payload = read_large_payload(s, frame.payload_size);
    s.consume_on_release = 0;
  }
  s.message_buffers.clear();
  std::size_t offset = frame.body_size;
  for (std::size_t size : frame.buffer_sizes) {
    offset += detail::padding_before(offset);
    s.message_buffers.emplace_back(payload + offset, size);
    offset += size;
  }
  return {{payload, frame.body_size}, s.message_buffers, s.message_fds};
}

void Connection::release_message() noexcept {
  ConnectionState& s = *state_;
  s.start += s.consume_on_release;
  s.consume_on_release = 0;
  if (s.start == s.end) s.start = s.end = 0;
  s.message_fds.clear();  // closes what the decoder did not take
  s.message_buffers.clear();
  s.large_payload.reset();
}

std::vector<std::byte> Connection::recv_bytes() {
  return recv_bytes(std::numeric_limits<std::size_t>::max());
}

std::vector<std::byte> Connection::recv_bytes(std::size_t maxlength) {
  ConnectionState& s = state("recv_bytes");
  if (!s.readable) throw UsageError(direction_error(true));
  Frame frame = read_frame_header(s);
  s.message_fds.clear();
  if (frame.payload_size > maxlength) {
    skip_stream(s, frame.payload_size);
    throw ProcessError("mproc: Connection::recv_bytes: a message of " + std::to_string(frame.payload_size) +
                       " bytes is longer than maxlength (" + std::to_string(maxlength) + "); it was discarded");
  }
  std::vector<std::byte> bytes(frame.payload_size);
  read_stream(s, bytes.data(), bytes.size());
  return bytes;
}

std::size_t Connection::recv_bytes_into(std::span<std::byte> buffer, std::size_t offset) {
  ConnectionState& s = state("recv_bytes_into");
  if (!s.readable) throw UsageError(direction_error(true));
  if (offset > buffer.size()) throw UsageError("mproc: Connection::recv_bytes_into: offset beyond the buffer");
  Frame frame = read_frame_header(s);
  s.message_fds.clear();
  if (frame.payload_size > buffer.size() - offset) {
    std::vector<std::byte> whole(frame.payload_size);
    read_stream(s, whole.data(), whole.size());
    throw BufferTooShort("mproc: Connection::recv_bytes_into: a message of " +
                             std::to_string(whole.size()) + " bytes does not fit in " +
                             std::to_string(buffer.size() - offset) + " bytes",
                         std::move(whole));
  }
  read_stream(s, buffer.data() + offset, frame.payload_size);
  return frame.payload_size;
}

bool Connection::poll_for(std::optional<std::chrono::nanoseconds> timeout) {
  ConnectionState& s = state("poll");
  if (!s.readable) throw UsageError(direction_error(true));
  if (s.buffered() != 0) return true;
  os::PollEntry entry{s.socket.get()};
  return detail::unwrap(os::poll_readable({&entry, 1}, timeout), "Connection::poll") > 0;
}

void Connection::save(Encoder& encoder) const {
  const ConnectionState& s = state("send (as a value)");
  encoder.write(s.readable);
  encoder.write(s.writable);
  encoder.write_fd(s.socket.get());
}

void Connection::load(Decoder& decoder) {
  bool can_read = false, can_write = false;
  decoder(can_read, can_write);
  *this = from_socket(decoder.take_fd(), can_read, can_write);
}

std::pair<Connection, Connection> Pipe(bool duplex) {
  os::SocketPair pair = detail::unwrap(os::socket_pair(), "Pipe");
  return {Connection::from_socket(std::move(pair.first), true, duplex),
          Connection::from_socket(std::move(pair.second), duplex, true)};
}

Waitable::Waitable(const Connection& connection) : connection_(connection), fd_(connection.fileno()) {}
Waitable::Waitable(int fd) : fd_(fd) {}

bool Waitable::operator==(const Waitable& other) const noexcept {
  if (connection_ || other.connection_) return connection_ == other.connection_;
  return fd_ == other.fd_;
}

std::vector<Waitable> wait(std::span<const Waitable> objects) { return wait(objects, std::nullopt); }

std::vector<Waitable> wait(std::span<const Waitable> objects, std::optional<std::chrono::nanoseconds> timeout) {
  std::vector<os::PollEntry> entries;
  bool any_buffered = false;
  for (const Waitable& w : objects) {
    entries.push_back({w.fileno()});
    if (w.connection() != nullptr && w.connection()->has_buffered_data()) any_buffered = true;
  }
  // Bytes already buffered in a Connection are ready now: only look around.
  if (any_buffered) timeout = std::chrono::nanoseconds(0);
  detail::unwrap(os::poll_readable(entries, timeout), "wait");
  std::vector<Waitable> ready;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    const Connection* c = objects[i].connection();
    if (entries[i].ready || (c != nullptr && c->has_buffered_data())) ready.push_back(objects[i]);
  }
  return ready;
}

}  // namespace mproc
