// The fake kernel the os layer is compiled against in os_mock_test: each
// call goes to a handler the test installs (see MPROC_SYSCALL in src/os/syscall.hpp).

#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <functional>

namespace mproc::os::mock {

struct Handlers {
  std::function<ssize_t(int, const void*, size_t)> write;
  std::function<ssize_t(int, void*, size_t)> read;
  std::function<int(int)> close;
  std::function<int(int, int, int)> fcntl;
  std::function<int(int, int, int, int*)> socketpair;
  std::function<ssize_t(int, const msghdr*, int)> sendmsg;
  std::function<ssize_t(int, msghdr*, int)> recvmsg;
};

// The handlers in force; tests replace them and restore them afterwards.
Handlers& handlers();

inline ssize_t write(int fd, const void* data, size_t size) { return handlers().write(fd, data, size); }
inline ssize_t read(int fd, void* data, size_t size) { return handlers().read(fd, data, size); }
inline int close(int fd) { return handlers().close(fd); }
inline int fcntl(int fd, int cmd, int arg) { return handlers().fcntl(fd, cmd, arg); }
inline int socketpair(int domain, int type, int protocol, int fds[2]) {
  return handlers().socketpair(domain, type, protocol, fds);
}
inline ssize_t sendmsg(int fd, const msghdr* msg, int flags) { return handlers().sendmsg(fd, msg, flags); }
inline ssize_t recvmsg(int fd, msghdr* msg, int flags) { return handlers().recvmsg(fd, msg, flags); }

}  // namespace mproc::os::mock
