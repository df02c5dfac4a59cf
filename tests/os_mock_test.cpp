// The os layer against a fake kernel: EINTR is retried, short transfers are
// continued, close is never retried, errors name the call.

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "mproc/unique_fd.hpp"
#include "os/io.hpp"
#include "os/socket.hpp"
#include "os_mock.hpp"

namespace mproc::os::mock {

Handlers& handlers() {
  static Handlers h;
  return h;
}

}  // namespace mproc::os::mock

namespace {

using mproc::os::mock::handlers;

class OsMock : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_ = handlers();
    handlers().close = [](int) { return 0; };
  }
  void TearDown() override { handlers() = saved_; }

 private:
  mproc::os::mock::Handlers saved_;
};

std::span<const std::byte> as_bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

TEST_F(OsMock, WriteAllRetriesInterruptedAndShortWrites) {
  std::string written;
  int calls = 0;
  handlers().write = [&](int, const void* data, size_t size) -> ssize_t {
    if (++calls % 2 == 1) {
      errno = EINTR;
      return -1;
    }
    size_t n = std::min<size_t>(size, 3);
    written.append(static_cast<const char*>(data), n);
    return static_cast<ssize_t>(n);
  };
  std::string text = "the whole message";
  EXPECT_FALSE(mproc::os::write_all(5, as_bytes(text)));
  EXPECT_EQ(written, text);
}

TEST_F(OsMock, WriteAllReportsOtherErrorsNamingTheCall) {
  handlers().write = [](int, const void*, size_t) -> ssize_t {
    errno = EPIPE;
    return -1;
  };
  mproc::os::Error error = mproc::os::write_all(5, as_bytes("x"));
  ASSERT_TRUE(error);
  EXPECT_EQ(error.code, std::error_code(EPIPE, std::system_category()));
  EXPECT_STREQ(error.call, "write");
}

TEST_F(OsMock, ReadFullAssemblesShortReadsAndStopsAtEndOfFile) {
  std::string source = "abcdefg";
  size_t at = 0;
  bool interrupted = false;
  handlers().read = [&](int, void* out, size_t size) -> ssize_t {
    if (!interrupted) {
      interrupted = true;
      errno = EINTR;
      return -1;
    }
    size_t n = std::min<size_t>({size, 2, source.size() - at});
    std::memcpy(out, source.data() + at, n);
    at += n;
    return static_cast<ssize_t>(n);
  };
  std::vector<std::byte> buffer(10);
  auto got = mproc::os::read_full(5, buffer);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value, source.size());
  EXPECT_EQ(std::memcmp(buffer.data(), source.data(), source.size()), 0);
}

TEST_F(OsMock, CloseIsNotRetriedAfterInterruption) {
  int closes = 0;
  handlers().close = [&](int) {
    ++closes;
    errno = EINTR;
    return -1;
  };
  { mproc::UniqueFd fd(9); }
  EXPECT_EQ(closes, 1);
}

TEST_F(OsMock, DupFailureIsSystemErrorNamingTheCall) {
  handlers().fcntl = [](int, int, int) {
    errno = EMFILE;
    return -1;
  };
  mproc::UniqueFd fd(3);
  try {
    (void)fd.dup();
    ADD_FAILURE() << "dup succeeded";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::error_code(EMFILE, std::system_category()));
    EXPECT_NE(std::string(e.what()).find("fcntl"), std::string::npos);
  }
  (void)fd.release();
}

TEST_F(OsMock, SendWithFdsRetriesAndFinishesAShortSendWithoutResendingFds) {
  int sendmsg_calls = 0;
  std::vector<std::vector<int>> passed;
  std::string sent;
  handlers().sendmsg = [&](int, const msghdr* msg, int) -> ssize_t {
    if (++sendmsg_calls == 1) {
      errno = EINTR;
      return -1;
    }
    std::vector<int> fds;
    if (msg->msg_controllen != 0) {
      const cmsghdr* c = CMSG_FIRSTHDR(msg);
      size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      fds.assign(reinterpret_cast<const int*>(CMSG_DATA(c)), reinterpret_cast<const int*>(CMSG_DATA(c)) + n);
    }
    passed.push_back(fds);
    // A short send: at most 4 bytes a call.
    size_t n = std::min<size_t>(4, msg->msg_iov[0].iov_len);
    sent.append(static_cast<const char*>(msg->msg_iov[0].iov_base), n);
    return static_cast<ssize_t>(n);
  };
  int fds[] = {10, 11};
  std::string text = "message with descriptors";
  EXPECT_FALSE(mproc::os::send_with_fds(5, as_bytes(text), fds));
  EXPECT_EQ(sent, text);
  ASSERT_GE(passed.size(), 2u);
  EXPECT_EQ(passed[0], (std::vector<int>{10, 11}));
  for (size_t i = 1; i < passed.size(); ++i) EXPECT_TRUE(passed[i].empty()) << "call " << i;
}

TEST_F(OsMock, SendPiecesGathersAndResumesAcrossPieces) {
  std::string sent;
  handlers().sendmsg = [&](int, const msghdr* msg, int) -> ssize_t {
    // Take 5 bytes at most, across iovecs.
    size_t budget = 5, taken = 0;
    for (size_t i = 0; i < msg->msg_iovlen && taken < budget; ++i) {
      size_t n = std::min(budget - taken, msg->msg_iov[i].iov_len);
      sent.append(static_cast<const char*>(msg->msg_iov[i].iov_base), n);
      taken += n;
    }
    return static_cast<ssize_t>(taken);
  };
  std::string a = "header", b, c = "body-bytes", d = "tail";
  std::span<const std::byte> pieces[] = {as_bytes(a), as_bytes(b), as_bytes(c), as_bytes(d)};
  EXPECT_FALSE(mproc::os::send_pieces(5, pieces, {}));
  EXPECT_EQ(sent, a + b + c + d);
}

TEST_F(OsMock, ReceiveWithFdsClosesWhatDoesNotFit) {
  std::vector<int> closed;
  handlers().close = [&](int fd) {
    closed.push_back(fd);
    return 0;
  };
  handlers().recvmsg = [](int, msghdr* msg, int) -> ssize_t {
    cmsghdr* c = CMSG_FIRSTHDR(msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(3 * sizeof(int));
    int fds[] = {20, 21, 22};
    std::memcpy(CMSG_DATA(c), fds, sizeof(fds));
    msg->msg_controllen = CMSG_SPACE(3 * sizeof(int));
    msg->msg_flags = 0;
    return 1;
  };
  std::byte buffer[8];
  mproc::UniqueFd room[2];
  size_t count = 99;
  auto got = mproc::os::receive_with_fds(5, buffer, room, count);
  EXPECT_FALSE(got.ok());
  EXPECT_EQ(got.error.code, std::error_code(EMSGSIZE, std::system_category()));
  EXPECT_EQ(count, 0u);
  std::sort(closed.begin(), closed.end());
  EXPECT_EQ(closed, (std::vector<int>{20, 21, 22}));
}

}  // namespace
