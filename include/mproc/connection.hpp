// mproc/connection.hpp
//
// Connections carry messages between two processes over a Unix stream
// socket: values through the codec (send/recv), raw bytes (send_bytes and
// friends), and, out of band, the descriptors of handles (a Connection can
// itself be sent). Pipe() makes a connected pair; wait() watches several
// connections, process sentinels and descriptors at once.
//
// Example:
//
//   auto [parent_end, child_end] = mproc::Pipe();
//   mproc::Process p([child_end] { child_end.send(std::string("hello")); });
//   p.start();
//   std::string greeting = parent_end.recv<std::string>();
//   p.join();
//
// A Connection is a handle: copies share one end of the socket, and close()
// closes it for all of them. One thread may send while another receives;
// two threads sending (or receiving) on one end at once must take turns, as
// must two processes sharing one end (a receive reads exactly one message
// from the socket, so processes taking turns each get whole messages).

#pragma once

#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "mproc/codec.hpp"
#include "mproc/errors.hpp"
#include "mproc/timeout.hpp"
#include "mproc/unique_fd.hpp"

namespace mproc {

namespace detail {
struct ConnectionState;

// One received message, valid until the next receive on its connection.
struct ReceivedMessage {
  std::span<const std::byte> body;
  std::span<const ByteView> buffers;
  std::span<UniqueFd> fds;
};
}  // namespace detail

// Connection
//
// One end of a connected pair. Every call on a closed connection, or in a
// direction the connection does not allow, throws UsageError; a failed system
// call throws std::system_error (sending to a peer that has gone: EPIPE).
class Connection {
 public:
  // An empty handle: closed().
  Connection() = default;

  // Wraps a connected Unix stream socket, usable for receiving and/or sending.
  static Connection from_socket(UniqueFd socket, bool readable = true, bool writable = true);

  // Connection::send()
  //
  // Sends `value` as one message. If it cannot be encoded, the exception
  // comes from here and nothing is sent. Large contiguous parts (64 KiB and
  // more) go straight from `value` to the socket without a copy.
  template <class T>
  void send(const T& value) {
    Encoder& encoder = prepare_send();
    encoder.encode(value);
    send_encoded();
  }

  // Connection::recv<T>()
  //
  // Receives one message and decodes it as a T, blocking until one arrives.
  // Throws EOFError once the peer has closed and nothing is left, and
  // DecodeError if the message is not a T (it is consumed; the connection
  // stays usable).
  template <class T>
  T recv() {
    MessageLease lease(*this);
    return Decoder(lease.message.body, lease.message.buffers, lease.message.fds).decode<T>();
  }

  // Connection::send_bytes()
  //
  // Sends data[offset, offset + size) as one message (all of it from offset
  // when size is not given). UsageError if the range is outside `data`.
  void send_bytes(std::span<const std::byte> data, std::size_t offset = 0);
  void send_bytes(std::span<const std::byte> data, std::size_t offset, std::size_t size);
  void send_bytes(std::string_view text) { send_bytes(std::as_bytes(std::span(text))); }

  // Connection::recv_bytes()
  //
  // Receives one message's bytes. A message longer than `maxlength` is
  // ProcessError, and is left unread: the next receive (with room for it)
  // takes it, so nothing is lost and nothing is allocated for it.
  std::vector<std::byte> recv_bytes();
  std::vector<std::byte> recv_bytes(std::size_t maxlength);

  // Connection::recv_bytes_into()
  //
  // Receives one message into buffer[offset...] and returns its length. If it
  // does not fit, throws BufferTooShort carrying the whole message.
  std::size_t recv_bytes_into(std::span<std::byte> buffer, std::size_t offset = 0);

  // Connection::poll()
  //
  // Whether there is something to read (or the peer has closed, so that a
  // receive would throw EOFError), waiting at most `timeout`; without one, it
  // does not wait (as in Python); poll(mproc::forever) waits without limit.
  // Never consumes or splits a message.
  bool poll() { return poll_for(std::chrono::nanoseconds(0)); }
  template <class Rep, class Period>
  bool poll(std::chrono::duration<Rep, Period> timeout) {
    return poll_for(detail::to_timeout(timeout));
  }
  bool poll(Forever) { return poll_for(std::nullopt); }

  // Connection::close()
  //
  // Closes this end, for every copy of the handle. Closing twice is harmless.
  void close();

  bool closed() const noexcept;
  bool readable() const noexcept;
  bool writable() const noexcept;

  // Connection::fileno()
  //
  // The socket's descriptor (owned by the connection).
  int fileno() const;

  // Whether a message whose header has been read waits in this end (one
  // that recv_bytes(maxlength) refused): the next receive takes it, and
  // poll() and wait() count the connection as ready.
  bool has_pending_message() const noexcept;

  // Two handles to the same end compare equal.
  bool operator==(const Connection& other) const noexcept { return state_ == other.state_; }

  // Encoding, for the codec: a Connection crosses as its descriptor.
  void save(Encoder& encoder) const;
  void load(Decoder& decoder);

 private:
  // Holds one received message; releases it (its unused descriptors closed)
  // when the decoding is done.
  struct MessageLease {
    explicit MessageLease(Connection& c) : connection(c), message(c.receive_message()) {}
    ~MessageLease() { connection.release_message(); }
    MessageLease(const MessageLease&) = delete;
    MessageLease& operator=(const MessageLease&) = delete;
    Connection& connection;
    detail::ReceivedMessage message;
  };

  detail::ConnectionState& state(const char* operation) const;
  Encoder& prepare_send();
  void send_encoded();
  detail::ReceivedMessage receive_message();
  void release_message() noexcept;
  bool poll_for(std::optional<std::chrono::nanoseconds> timeout);

  std::shared_ptr<detail::ConnectionState> state_;
};

// Pipe()
//
// A connected pair of Connections. Duplex (the default): both ends send and
// receive. One-way (duplex = false): the first end only receives, the second
// only sends, as Python's Pipe(duplex=False).
std::pair<Connection, Connection> Pipe(bool duplex = true);

// Waitable
//
// What wait() watches: a Connection (ready when it has something to read),
// or a descriptor such as a Process's sentinel() (ready when readable).
class Waitable {
 public:
  Waitable(const Connection& connection);  // NOLINT: implicit, for wait({a, b})
  Waitable(int fd);                        // NOLINT

  int fileno() const noexcept { return fd_; }

  // The Connection this was made from, or nullptr for a descriptor.
  const Connection* connection() const noexcept { return connection_ ? &*connection_ : nullptr; }

  bool operator==(const Waitable& other) const noexcept;
  bool operator==(const Connection& other) const noexcept { return connection_ && *connection_ == other; }
  bool operator==(int fd) const noexcept { return !connection_ && fd_ == fd; }

 private:
  std::optional<Connection> connection_;
  int fd_;
};

// wait()
//
// Waits until at least one of `objects` is ready, or the timeout passes, and
// returns those that are ready (empty on timeout), in the order given:
// Python's multiprocessing.connection.wait().
std::vector<Waitable> wait(std::span<const Waitable> objects);
std::vector<Waitable> wait(std::span<const Waitable> objects, std::optional<std::chrono::nanoseconds> timeout);
inline std::vector<Waitable> wait(std::initializer_list<Waitable> objects) {
  return wait(std::span<const Waitable>(objects.begin(), objects.size()));
}
template <class Rep, class Period>
std::vector<Waitable> wait(std::span<const Waitable> objects, std::chrono::duration<Rep, Period> timeout) {
  return wait(objects, detail::to_timeout(timeout));
}
template <class Rep, class Period>
std::vector<Waitable> wait(std::initializer_list<Waitable> objects,
                           std::chrono::duration<Rep, Period> timeout) {
  return wait(std::span<const Waitable>(objects.begin(), objects.size()), detail::to_timeout(timeout));
}

}  // namespace mproc
