// Connections: framed messages over a Unix stream socket.
//
// A frame is a 16-byte header (body size, descriptor count, out-of-band
// buffer count), the sizes of the out-of-band buffers, then the payload: the
// body, and each buffer aligned to 16 bytes from the payload's start. The
// descriptors travel with the header's first byte (SCM_RIGHTS).
//
// Sending is one sendmsg of all the pieces when the socket has room.
// Receiving reads exactly one frame and not a byte more (the header, then
// the rest), as Python does: processes that share a receiving end and take
// turns under a lock each get whole messages, and nothing another process
// should read sits in this one's memory. A payload that fits in 64 KiB is
// read into a reused buffer; a larger one into memory that grows only as
// bytes really arrive, so a header claiming a huge size allocates nothing it
// does not receive.

#include "mproc/connection.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "common/raise.hpp"
#include "os/poll.hpp"
#include "os/socket.hpp"

namespace mproc {
namespace detail {

constexpr std::size_t kSmallPayloadSize = 64 * 1024;
constexpr std::size_t kOutOfBandFrom = 64 * 1024;
constexpr std::size_t kPayloadAlignment = 16;
// Each out-of-band buffer is at least kOutOfBandFrom bytes, so this allows
// messages of 4 GiB and more, and bounds the receiver's table to 512 KiB.
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

// A frame whose header (and buffer table) has been read.
struct Frame {
  std::size_t body_size = 0;
  std::size_t payload_size = 0;
  std::vector<std::size_t> buffer_sizes;
  std::size_t fd_count = 0;  // as the header announces
  std::vector<UniqueFd> fds;
  bool fds_lost = false;  // the kernel could not give us its descriptors (MSG_CTRUNC)
};

struct ConnectionState {
  UniqueFd socket;
  bool readable = true;
  bool writable = true;
  Encoder encoder{EncodeOptions{.out_of_band_from = kOutOfBandFrom}};

  // Receiving.
  std::unique_ptr<std::byte[]> small_payload;  // reused by every payload that fits
  // Room for the descriptors one read may bring, reused by every read.
  std::vector<UniqueFd> incoming_fds = std::vector<UniqueFd>(os::kMaxFdsPerMessage);
  // Set while a frame is partly read: if a receive ends with it still set
  // (an exception), the stream has lost its framing for good.
  bool mid_frame = false;
  bool broken = false;     // the stream lost its framing: nothing more can be trusted
  bool peer_gone = false;  // ... because the peer closed in the middle of a message
  // A frame whose header was read but which recv_bytes(maxlength) refused:
  // the next receive takes it.
  std::optional<Frame> pending;

  // The message being decoded (between receive_message and release_message).
  Frame message;
  std::vector<ByteView> message_buffers;
  std::unique_ptr<std::byte[]> large_payload;
};

}  // namespace detail

namespace {

using detail::ConnectionState;
using detail::Frame;
using detail::FrameHeader;

[[noreturn]] void throw_broken(ConnectionState& s, const std::string& what) {
  s.broken = true;
  throw DecodeError("mproc: Connection: " + what + "; the connection can no longer be read");
}

[[noreturn]] void throw_eof_mid_message(ConnectionState& s) {
  s.broken = s.peer_gone = true;
  throw EOFError("mproc: Connection: the other end closed the connection in the middle of a message");
}

// Refuses to read a stream that lost its framing.
void check_framing(ConnectionState& s) {
  if (s.mid_frame) s.broken = true;  // an earlier receive stopped in the middle of a frame
  if (s.peer_gone) throw EOFError("mproc: Connection: the other end closed the connection");
  if (s.broken) throw DecodeError("mproc: Connection: an earlier error in the middle of a message left it unreadable");
}

// Reads exactly `size` bytes of the current frame into `out`. Descriptors
// that arrive are added to `fds`. Returns false if the peer had closed
// before the frame's first byte (only possible when `frame_start`).
bool read_exact(ConnectionState& s, std::byte* out, std::size_t size, Frame& frame, bool frame_start = false) {
  std::size_t done = 0;
  while (done < size) {
    std::size_t fd_count = 0;
    auto got = os::receive_with_fds(s.socket.get(), {out + done, size - done}, s.incoming_fds, fd_count);
    if (got.error && got.error.code == std::errc::message_size && got.value != 0) {
      frame.fds_lost = true;  // the bytes came, without their descriptors: keep the framing
    } else {
      detail::check(got.error, "Connection receive");
    }
    if (got.value == 0) {
      if (frame_start && done == 0) return false;
      throw_eof_mid_message(s);
    }
    s.mid_frame = true;
    for (std::size_t i = 0; i < fd_count; ++i) frame.fds.push_back(std::move(s.incoming_fds[i]));
    done += got.value;
  }
  return true;
}

std::size_t checked_add(ConnectionState& s, std::size_t a, std::size_t b) {
  if (a > std::numeric_limits<std::size_t>::max() - b) throw_broken(s, "frame sizes overflow");
  return a + b;
}

// Reads and checks the next frame's header and buffer table, with its
// descriptors; or takes the frame a refused recv_bytes left pending.
Frame read_frame_header(ConnectionState& s) {
  if (s.pending) {
    Frame frame = std::move(*s.pending);
    s.pending.reset();
    s.mid_frame = true;
    return frame;
  }
  check_framing(s);
  Frame frame;
  FrameHeader header;
  if (!read_exact(s, reinterpret_cast<std::byte*>(&header), sizeof(header), frame, true)) {
    throw EOFError("mproc: Connection: the other end closed the connection");
  }
  // Descriptors travel with the header's first byte: all are here by now,
  // unless the kernel could not install them (too many open descriptors).
  frame.fd_count = header.fd_count;
  if (frame.fds.size() < frame.fd_count) frame.fds_lost = true;
  if (header.buffer_count > detail::kMaxBuffersPerFrame) throw_broken(s, "a frame claims too many buffers");
  frame.body_size = static_cast<std::size_t>(header.body_size);
  frame.payload_size = frame.body_size;
  if (header.buffer_count != 0) {
    std::vector<std::uint64_t> table(header.buffer_count);
    read_exact(s, reinterpret_cast<std::byte*>(table.data()), table.size() * sizeof(std::uint64_t), frame);
    for (std::uint64_t size : table) {
      frame.buffer_sizes.push_back(static_cast<std::size_t>(size));
      std::size_t aligned = checked_add(s, frame.payload_size, detail::padding_before(frame.payload_size));
      frame.payload_size = checked_add(s, aligned, static_cast<std::size_t>(size));
    }
  }
  return frame;
}

// Reads `size` bytes into storage that grows only as fast as bytes arrive.
// `grow(capacity, kept)` makes room for `capacity` bytes, keeping the first
// `kept`, and returns where they start.
template <class Grow>
void read_growing(ConnectionState& s, Frame& frame, std::size_t size, Grow grow) {
  std::size_t capacity = std::min(size, detail::kFirstLargeChunk);
  std::byte* storage = grow(capacity, 0);
  std::size_t done = 0;
  while (done < size) {
    if (done == capacity) {
      capacity = std::min(size, capacity * 2);
      storage = grow(capacity, done);
    }
    read_exact(s, storage + done, capacity - done, frame);
    done = capacity;
  }
}

std::vector<std::byte> read_payload_as_vector(ConnectionState& s, Frame& frame) {
  std::vector<std::byte> bytes;
  read_growing(s, frame, frame.payload_size, [&](std::size_t capacity, std::size_t) {
    bytes.resize(capacity);
    return bytes.data();
  });
  return bytes;
}

// Reads a frame's payload: into the reused buffer if it fits, else into
// s.large_payload.
const std::byte* read_payload(ConnectionState& s, Frame& frame) {
  if (frame.payload_size <= detail::kSmallPayloadSize) {
    if (!s.small_payload) s.small_payload = std::make_unique_for_overwrite<std::byte[]>(detail::kSmallPayloadSize);
    read_exact(s, s.small_payload.get(), frame.payload_size, frame);
    return s.small_payload.get();
  }
  std::unique_ptr<std::byte[]> storage;
  read_growing(s, frame, frame.payload_size, [&](std::size_t capacity, std::size_t kept) {
    auto grown = std::make_unique_for_overwrite<std::byte[]>(capacity);
    if (kept != 0) std::memcpy(grown.get(), storage.get(), kept);
    storage = std::move(grown);
    return storage.get();
  });
  s.large_payload = std::move(storage);
  return s.large_payload.get();
}

// The frame has been read to its end: the stream is at a boundary again.
void finish_frame(ConnectionState& s, Frame& frame) {
  s.mid_frame = false;
  // Descriptors beyond those the header announced belong to nothing.
  if (frame.fds.size() > frame.fd_count) frame.fds.resize(frame.fd_count);
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
bool Connection::has_pending_message() const noexcept { return !closed() && state_->pending.has_value(); }
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
  if (buffers.size() > detail::kMaxBuffersPerFrame) {
    throw EncodeError("mproc: a message may carry at most " + std::to_string(detail::kMaxBuffersPerFrame) +
                      " out-of-band buffers (contiguous parts of 64 KiB or more)");
  }
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
  const std::byte* payload = read_payload(s, frame);
  finish_frame(s, frame);
  if (frame.fds_lost) {
    s.large_payload.reset();
    throw ProcessError(
        "mproc: Connection::recv: the descriptors carried by a message could not be received (has this "
        "process reached its limit of open descriptors?); the message was discarded");
  }
  s.message_buffers.clear();
  std::size_t offset = frame.body_size;
  for (std::size_t size : frame.buffer_sizes) {
    offset += detail::padding_before(offset);
    s.message_buffers.emplace_back(payload + offset, size);
    offset += size;
  }
  s.message = std::move(frame);
  return {{payload, s.message.body_size}, s.message_buffers, s.message.fds};
}

void Connection::release_message() noexcept {
  ConnectionState& s = *state_;
  s.message = {};  // closes the descriptors the decoder did not take
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
  if (frame.payload_size > maxlength) {
    std::size_t size = frame.payload_size;
    s.pending = std::move(frame);
    s.mid_frame = false;
    throw ProcessError("mproc: Connection::recv_bytes: a message of " + std::to_string(size) +
                       " bytes is longer than maxlength (" + std::to_string(maxlength) +
                       "); it is left unread for a receive with room for it");
  }
  std::vector<std::byte> bytes = read_payload_as_vector(s, frame);
  finish_frame(s, frame);
  return bytes;
}

std::size_t Connection::recv_bytes_into(std::span<std::byte> buffer, std::size_t offset) {
  ConnectionState& s = state("recv_bytes_into");
  if (!s.readable) throw UsageError(direction_error(true));
  if (offset > buffer.size()) throw UsageError("mproc: Connection::recv_bytes_into: offset beyond the buffer");
  Frame frame = read_frame_header(s);
  if (frame.payload_size > buffer.size() - offset) {
    std::vector<std::byte> whole = read_payload_as_vector(s, frame);
    finish_frame(s, frame);
    throw BufferTooShort("mproc: Connection::recv_bytes_into: a message of " + std::to_string(whole.size()) +
                             " bytes does not fit in " + std::to_string(buffer.size() - offset) + " bytes",
                         std::move(whole));
  }
  read_exact(s, buffer.data() + offset, frame.payload_size, frame);
  finish_frame(s, frame);
  return frame.payload_size;
}

bool Connection::poll_for(std::optional<std::chrono::nanoseconds> timeout) {
  ConnectionState& s = state("poll");
  if (!s.readable) throw UsageError(direction_error(true));
  if (s.pending) return true;
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
  bool any_pending = false;
  for (const Waitable& w : objects) {
    entries.push_back({w.fileno()});
    if (w.connection() != nullptr && w.connection()->has_pending_message()) any_pending = true;
  }
  // A message already half read (its header) is ready now: only look around.
  if (any_pending) timeout = std::chrono::nanoseconds(0);
  detail::unwrap(os::poll_readable(entries, timeout), "wait");
  std::vector<Waitable> ready;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    const Connection* c = objects[i].connection();
    if (entries[i].ready || (c != nullptr && c->has_pending_message())) ready.push_back(objects[i]);
  }
  return ready;
}

}  // namespace mproc
