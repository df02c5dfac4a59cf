// Unix-domain stream sockets, and descriptors passed over them with SCM_RIGHTS.

#pragma once

#include <cstddef>
#include <span>

#include "mproc/unique_fd.hpp"
#include "os/error.hpp"

namespace mproc::os {

struct SocketPair {
  UniqueFd first;
  UniqueFd second;
};

// A connected pair of AF_UNIX stream sockets, both close-on-exec.
Result<SocketPair> socket_pair() noexcept;

// The most descriptors one call carries (the kernel's SCM_MAX_FD).
inline constexpr std::size_t kMaxFdsPerMessage = 253;

// Sends all of `bytes`; `fds` (at most kMaxFdsPerMessage) travel with the
// first byte. `bytes` must not be empty when `fds` is not.
Error send_with_fds(int socket, std::span<const std::byte> bytes,
                    std::span<const int> fds) noexcept;

// Sends all of `pieces`, in order, as one stream of bytes (one sendmsg when
// the socket has room); `fds` travel with the first byte. Like
// send_with_fds, the first piece must not be empty when `fds` is not.
Error send_pieces(int socket, std::span<const std::span<const std::byte>> pieces,
                  std::span<const int> fds) noexcept;

// Receives up to buffer.size() bytes (0 at end of file). Descriptors that
// arrive with them are stored, close-on-exec, in `fds` from the front, and
// their number in `fd_count`. Fails with EMSGSIZE, closing what arrived, when
// more descriptors came than `fds` holds; the value then still counts the
// bytes received.
Result<std::size_t> receive_with_fds(int socket, std::span<std::byte> buffer,
                                     std::span<UniqueFd> fds, std::size_t& fd_count) noexcept;

}  // namespace mproc::os
