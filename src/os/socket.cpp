#include "os/socket.hpp"

#include <sys/socket.h>

#include <cstring>

#include "os/syscall.hpp"

namespace mproc::os {

Result<SocketPair> socket_pair() noexcept {
  int fds[2];
  if (MPROC_SYSCALL(socketpair)(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return {{}, Error::last("socketpair")};
  return {{UniqueFd(fds[0]), UniqueFd(fds[1])}, {}};
}

namespace {

// Control-message space for the largest descriptor set one call may carry.
union ControlBuffer {
  char bytes[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  cmsghdr align;
};

}  // namespace

Error send_with_fds(int socket, std::span<const std::byte> bytes,
                    std::span<const int> fds) noexcept {
  std::span<const std::byte> pieces[] = {bytes};
  return send_pieces(socket, pieces, fds);
}

namespace {

// Where a gathered send has got to: the piece, and the offset in it.
struct Cursor {
  std::size_t piece = 0;
  std::size_t offset = 0;
};

constexpr std::size_t kMaxIovecs = 64;

// Fills `iov` with what is left from `at`, skipping empty pieces.
std::size_t gather(std::span<const std::span<const std::byte>> pieces, Cursor at, iovec* iov) {
  std::size_t n = 0;
  for (std::size_t p = at.piece; p < pieces.size() && n < kMaxIovecs; ++p) {
    std::size_t skip = p == at.piece ? at.offset : 0;
    if (pieces[p].size() == skip) continue;
    iov[n++] = {const_cast<std::byte*>(pieces[p].data() + skip), pieces[p].size() - skip};
  }
  return n;
}

Cursor advance(std::span<const std::span<const std::byte>> pieces, Cursor at, std::size_t sent) {
  while (at.piece < pieces.size()) {
    std::size_t left = pieces[at.piece].size() - at.offset;
    if (sent < left) return {at.piece, at.offset + sent};
    sent -= left;
    at = {at.piece + 1, 0};
  }
  return at;
}

}  // namespace

Error send_pieces(int socket, std::span<const std::span<const std::byte>> pieces,
                  std::span<const int> fds) noexcept {
  if (fds.size() > kMaxFdsPerMessage) return Error::of(EINVAL, "sendmsg");
  if (!fds.empty() && (pieces.empty() || pieces[0].empty())) return Error::of(EINVAL, "sendmsg");

  ControlBuffer control;
  Cursor at;
  bool fds_pending = !fds.empty();
  iovec iov[kMaxIovecs];
  for (;;) {
    std::size_t count = gather(pieces, at, iov);
    if (count == 0) return {};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    if (fds_pending) {
      // The descriptors go with the first byte sent, and only once.
      std::memset(&control, 0, sizeof(control));
      msg.msg_control = control.bytes;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t sent = MPROC_SYSCALL(sendmsg)(socket, &msg, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return Error::last("sendmsg");
    }
    fds_pending = false;
    at = advance(pieces, at, static_cast<std::size_t>(sent));
  }
}

namespace {

// Adopts the descriptors of every SCM_RIGHTS message in `msg`. Returns false
// (having closed them all) if they do not fit in `fds`.
bool adopt_fds(msghdr& msg, std::span<UniqueFd> fds, std::size_t& fd_count) noexcept {
  bool fit = (msg.msg_flags & MSG_CTRUNC) == 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < n; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      UniqueFd owned(fd);
      if (fd_count < fds.size()) {
        fds[fd_count++] = std::move(owned);
      } else {
        fit = false;
      }
    }
  }
  if (!fit) {
    for (std::size_t i = 0; i < fd_count; ++i) fds[i].reset();
    fd_count = 0;
  }
  return fit;
}

}  // namespace

Result<std::size_t> receive_with_fds(int socket, std::span<std::byte> buffer,
                                     std::span<UniqueFd> fds, std::size_t& fd_count) noexcept {
  fd_count = 0;
  ControlBuffer control;
  iovec iov{buffer.data(), buffer.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.bytes;
  msg.msg_controllen = sizeof(control.bytes);
  ssize_t got;
  do {
    got = MPROC_SYSCALL(recvmsg)(socket, &msg, MSG_CMSG_CLOEXEC);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return {0, Error::last("recvmsg")};
  // The bytes were taken off the stream even when the descriptors did not
  // fit: report them, so the caller knows how far the stream moved.
  if (!adopt_fds(msg, fds, fd_count)) return {static_cast<std::size_t>(got), Error::of(EMSGSIZE, "recvmsg")};
  return {static_cast<std::size_t>(got), {}};
}

}  // namespace mproc::os
