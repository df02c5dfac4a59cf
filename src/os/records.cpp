#include "os/records.hpp"

#include <sys/socket.h>

#include "os/syscall.hpp"

namespace mproc::os {

Result<SocketPair> record_pair() noexcept {
  int fds[2];
  if (MPROC_SYSCALL(socketpair)(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
    return {{}, Error::last("socketpair")};
  return {{UniqueFd(fds[0]), UniqueFd(fds[1])}, {}};
}

Error send_record(int socket, std::span<const std::byte> record) noexcept {
  for (;;) {
    ssize_t sent = MPROC_SYSCALL(send)(socket, record.data(), record.size(), MSG_NOSIGNAL);
    if (sent >= 0) return {};
    if (errno != EINTR) return Error::last("send");
  }
}

Result<std::size_t> receive_record_now(int socket, std::span<std::byte> buffer) noexcept {
  for (;;) {
    ssize_t got = MPROC_SYSCALL(recv)(socket, buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (got >= 0) return {static_cast<std::size_t>(got), {}};
    if (errno != EINTR) return {0, Error::last("recv")};
  }
}

}  // namespace mproc::os
