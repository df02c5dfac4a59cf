// Sockets that carry whole records: AF_UNIX SOCK_SEQPACKET pairs. Each send
// arrives as one record, never merged with or split by a concurrent sender,
// and a dead peer is an EPIPE, not a SIGPIPE that kills the sender.

#pragma once

#include <cstddef>
#include <span>

#include "os/error.hpp"
#include "os/socket.hpp"

namespace mproc::os {

// A connected pair of record sockets, both close-on-exec.
Result<SocketPair> record_pair() noexcept;

// Sends `record` whole, retrying after EINTR. EPIPE once every peer is gone.
Error send_record(int socket, std::span<const std::byte> record) noexcept;

// Receives one record without waiting: its size (a larger record is cut to
// buffer.size()), 0 at end of file (every peer closed), EAGAIN when none is
// waiting. Async-signal-safe.
Result<std::size_t> receive_record_now(int socket, std::span<std::byte> buffer) noexcept;

}  // namespace mproc::os
