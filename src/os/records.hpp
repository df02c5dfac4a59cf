// Sockets that carry whole records: AF_UNIX SOCK_SEQPACKET pairs. Each send
// arrives as one record, never merged with or split by a concurrent sender,
// and a dead peer is an EPIPE, not a SIGPIPE that kills the sender.

#pragma once

#include <cstddef>
#include <span>

#include "os/error.hpp"
#include "os/socket.hpp"

namespace mproc::os {

// The most records one call sends or receives.
inline constexpr std::size_t kMaxRecordBatch = 64;

// A connected pair of record sockets, both close-on-exec.
Result<SocketPair> record_pair() noexcept;

// Sends each of `records` as one record, in order, in as few calls as the
// kernel allows (sendmmsg). At most kMaxRecordBatch records.
Error send_records(int socket, std::span<const std::span<const std::byte>> records) noexcept;

// Receives up to sizes.size() records without waiting (recvmmsg), each into its
// own `stride`-byte piece of `buffer`, their sizes into `sizes`. The value
// is how many arrived (a record of size 0 is end of file); EAGAIN when none
// is waiting. At most kMaxRecordBatch at a time. Async-signal-safe.
Result<std::size_t> receive_records_now(int socket, std::span<std::byte> buffer, std::size_t stride,
                                        std::span<std::size_t> sizes) noexcept;

// Waits for one record and receives it into `buffer`; the value is its size
// (0 at end of file). Retries after EINTR.
Result<std::size_t> receive_record(int socket, std::span<std::byte> buffer) noexcept;

// Asks for a send buffer of `bytes` on `socket` (the kernel caps it at its
// wmem_max): how many records may wait before a sender blocks.
Error set_send_buffer(int socket, int bytes) noexcept;

}  // namespace mproc::os
