#include "os/records.hpp"

#include <sys/socket.h>

#include <algorithm>

#include "os/syscall.hpp"

namespace mproc::os {

Result<SocketPair> record_pair() noexcept {
  int fds[2];
  if (MPROC_SYSCALL(socketpair)(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
    return {{}, Error::last("socketpair")};
  return {{UniqueFd(fds[0]), UniqueFd(fds[1])}, {}};
}

Error send_records(int socket, std::span<const std::span<const std::byte>> records) noexcept {
  mmsghdr messages[kMaxRecordBatch];
  iovec pieces[kMaxRecordBatch];
  std::size_t count = std::min(records.size(), kMaxRecordBatch);
  for (std::size_t i = 0; i < count; ++i) {
    pieces[i] = {const_cast<std::byte*>(records[i].data()), records[i].size()};
    messages[i] = {};
    messages[i].msg_hdr.msg_iov = &pieces[i];
    messages[i].msg_hdr.msg_iovlen = 1;
  }
  std::size_t sent = 0;
  while (sent < count) {
    int n = MPROC_SYSCALL(sendmmsg)(socket, messages + sent, static_cast<unsigned>(count - sent), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::last("sendmmsg");
    }
    sent += static_cast<std::size_t>(n);
  }
  return {};
}

Result<std::size_t> receive_records_now(int socket, std::span<std::byte> buffer, std::size_t stride,
                                        std::span<std::size_t> sizes) noexcept {
  std::size_t count = std::min({sizes.size(), buffer.size() / stride, kMaxRecordBatch});
  mmsghdr messages[kMaxRecordBatch];
  iovec pieces[kMaxRecordBatch];
  for (std::size_t i = 0; i < count; ++i) {
    pieces[i] = {buffer.data() + i * stride, stride};
    messages[i] = {};
    messages[i].msg_hdr.msg_iov = &pieces[i];
    messages[i].msg_hdr.msg_iovlen = 1;
  }
  for (;;) {
    int got = MPROC_SYSCALL(recvmmsg)(socket, messages, static_cast<unsigned>(count), MSG_DONTWAIT, nullptr);
    if (got >= 0) {
      for (int i = 0; i < got; ++i) sizes[static_cast<std::size_t>(i)] = messages[i].msg_len;
      return {static_cast<std::size_t>(got), {}};
    }
    if (errno != EINTR) return {0, Error::last("recvmmsg")};
  }
}

Result<std::size_t> receive_record(int socket, std::span<std::byte> buffer) noexcept {
  for (;;) {
    ssize_t got = MPROC_SYSCALL(recv)(socket, buffer.data(), buffer.size(), 0);
    if (got >= 0) return {static_cast<std::size_t>(got), {}};
    if (errno != EINTR) return {0, Error::last("recv")};
  }
}

Error set_send_buffer(int socket, int bytes) noexcept {
  if (MPROC_SYSCALL(setsockopt)(socket, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes)) != 0)
    return Error::last("setsockopt");
  return {};
}

}  // namespace mproc::os
