// Connections and Pipe: messages of any size cross intact, errors are the
// documented ones, and a connection stays usable after an error that is the
// message's fault.

#include "mproc/connection.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "mproc/process.hpp"
#include "os/io.hpp"
#include "os/socket.hpp"
#include "support/child.hpp"
#include "support/expect.hpp"

namespace {

using mproc::Connection;
using mproc::Pipe;
using mproc::testing::ChildProcess;
using mproc::testing::expect_throw_containing;
using namespace std::chrono_literals;

std::vector<std::byte> bytes_of(std::string_view text) {
  auto b = std::as_bytes(std::span(text));
  return {b.begin(), b.end()};
}

std::string text_of(const std::vector<std::byte>& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

struct Job {
  std::string name;
  std::vector<double> weights;
  bool operator==(const Job&) const = default;
};

TEST(ConnectionPipe, ValuesCrossBothWaysBetweenProcesses) {
  auto [parent_end, child_end] = Pipe();
  auto child = ChildProcess::fork([child_end = child_end]() mutable {
    Job job = child_end.recv<Job>();
    job.name += " done";
    for (double& w : job.weights) w *= 2;
    child_end.send(job);
    return 0;
  });
  parent_end.send(Job{"sum", {1.5, 2.5}});
  EXPECT_EQ(parent_end.recv<Job>(), (Job{"sum done", {3.0, 5.0}}));
  EXPECT_EQ(child.wait(), 0);
}

TEST(ConnectionPipe, OneWayPipeHasAReceiveEndAndASendEnd) {
  auto [reader, writer] = Pipe(false);
  EXPECT_TRUE(reader.readable());
  EXPECT_FALSE(reader.writable());
  EXPECT_TRUE(writer.writable());
  EXPECT_FALSE(writer.readable());
  writer.send(42);
  EXPECT_EQ(reader.recv<int>(), 42);
  expect_throw_containing<mproc::UsageError>([&] { reader.send(1); }, "only receives");
  expect_throw_containing<mproc::UsageError>([&] { (void)writer.recv<int>(); }, "only sends");
  expect_throw_containing<mproc::UsageError>([&] { (void)writer.poll(); }, "only sends");
}

TEST(ConnectionBytes, SendBytesHonoursOffsetAndSize) {
  auto [a, b] = Pipe();
  auto data = bytes_of("0123456789");
  a.send_bytes(data);
  a.send_bytes(data, 3);
  a.send_bytes(data, 2, 4);
  a.send_bytes(std::string_view("text"));
  a.send_bytes(std::span<const std::byte>());
  EXPECT_EQ(text_of(b.recv_bytes()), "0123456789");
  EXPECT_EQ(text_of(b.recv_bytes()), "3456789");
  EXPECT_EQ(text_of(b.recv_bytes()), "2345");
  EXPECT_EQ(text_of(b.recv_bytes()), "text");
  EXPECT_TRUE(b.recv_bytes().empty());
  expect_throw_containing<mproc::UsageError>([&] { a.send_bytes(data, 11); }, "offset");
  expect_throw_containing<mproc::UsageError>([&] { a.send_bytes(data, 8, 3); }, "size");
}

TEST(ConnectionBytes, TooLongForMaxlengthIsLeftUnreadForTheNextReceive) {
  auto [a, b] = Pipe();
  a.send_bytes(std::string_view("this is too long"));
  a.send_bytes(std::string_view("short"));
  a.send(std::string("a value"));
  expect_throw_containing<mproc::ProcessError>([&] { (void)b.recv_bytes(5); }, "longer than maxlength");
  expect_throw_containing<mproc::ProcessError>([&] { (void)b.recv_bytes(5); }, "longer than maxlength");
  EXPECT_TRUE(b.has_pending_message());
  EXPECT_TRUE(b.poll());
  EXPECT_EQ(mproc::wait({b}, 0ms).size(), 1u);
  EXPECT_EQ(text_of(b.recv_bytes()), "this is too long");
  EXPECT_FALSE(b.has_pending_message());
  EXPECT_EQ(text_of(b.recv_bytes(5)), "short");
  expect_throw_containing<mproc::ProcessError>([&] { (void)b.recv_bytes(1); }, "longer than maxlength");
  EXPECT_EQ(b.recv<std::string>(), "a value");
}

// Writes raw bytes (and descriptors) to a socket, to play a peer that does
// not follow the protocol.
void write_raw(int fd, std::span<const std::byte> bytes, std::span<const int> fds = {}) {
  ASSERT_FALSE(mproc::os::send_with_fds(fd, bytes, fds));
}

template <class T>
std::span<const std::byte> raw(const T& value) {
  return std::as_bytes(std::span(&value, 1));
}

struct RawHeader {
  std::uint64_t body_size;
  std::uint32_t fd_count;
  std::uint32_t buffer_count;
};

TEST(ConnectionHostilePeer, AHugeClaimedSizeAllocatesOnlyWhatArrives) {
  for (int variant = 0; variant < 3; ++variant) {
    auto sockets = mproc::os::socket_pair();
    ASSERT_TRUE(sockets.ok());
    Connection reader = Connection::from_socket(std::move(sockets.value.first));
    write_raw(sockets.value.second.get(), raw(RawHeader{std::uint64_t{1} << 40, 0, 0}));
    write_raw(sockets.value.second.get(), std::as_bytes(std::span("abc", 3)));
    sockets.value.second.reset();
    // Allocating the claimed terabyte up front would be bad_alloc, not EOFError.
    std::vector<std::byte> small(16);
    if (variant == 0) expect_throw_containing<mproc::EOFError>([&] { (void)reader.recv_bytes(); }, "middle of a message");
    if (variant == 1) expect_throw_containing<mproc::EOFError>([&] { (void)reader.recv_bytes_into(small); }, "middle");
    if (variant == 2) expect_throw_containing<mproc::EOFError>([&] { (void)reader.recv<std::string>(); }, "middle");
    // The stream is over: every later receive says so.
    expect_throw_containing<mproc::EOFError>([&] { (void)reader.recv_bytes(); }, "closed the connection");
  }
}

TEST(ConnectionHostilePeer, MaxlengthRefusesAHugeClaimWithoutWaitingForIt) {
  auto [a, b] = Pipe();
  write_raw(a.fileno(), raw(RawHeader{std::uint64_t{1} << 40, 0, 0}));
  // The peer stays open and sends nothing more: a reader that tried to skip
  // the claimed bytes would wait forever.
  expect_throw_containing<mproc::ProcessError>([&] { (void)b.recv_bytes(1 << 20); }, "longer than maxlength");
}

TEST(ConnectionHostilePeer, AMalformedFrameMakesTheConnectionUnreadableForGood) {
  auto [a, b] = Pipe();
  write_raw(a.fileno(), raw(RawHeader{0, 0, (1u << 16) + 1}));
  expect_throw_containing<mproc::DecodeError>([&] { (void)b.recv_bytes(); }, "too many buffers");
  a.send(1);
  expect_throw_containing<mproc::DecodeError>([&] { (void)b.recv<int>(); }, "unreadable");
}

TEST(ConnectionHostilePeer, AFrameWithThousandsOfBuffersIsReadWhole) {
  auto [a, b] = Pipe();
  // 9000 empty buffers: a table of 72 000 bytes, more than one read buffer.
  constexpr std::uint32_t kBuffers = 9000;
  std::vector<std::uint64_t> table(kBuffers, 0);
  std::vector<std::byte> body(16, std::byte{0});
  std::memcpy(body.data(), "abc", 3);
  write_raw(a.fileno(), raw(RawHeader{3, 0, kBuffers}));
  write_raw(a.fileno(), std::as_bytes(std::span(table)));
  write_raw(a.fileno(), body);
  a.send_bytes(std::string_view("next"));
  auto payload = b.recv_bytes();
  ASSERT_EQ(payload.size(), 16u);  // the body, padded to where the (empty) buffers start
  EXPECT_EQ(text_of(payload).substr(0, 3), "abc");
  EXPECT_EQ(text_of(b.recv_bytes()), "next");
}

TEST(ConnectionHostilePeer, DescriptorsTheHeaderDoesNotAnnounceAreClosed) {
  auto [a, b] = Pipe();
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  mproc::UniqueFd pipe_read(pipe_fds[0]);
  mproc::UniqueFd pipe_write(pipe_fds[1]);
  // A frame announcing no descriptor, sent with one: the pipe's write end.
  std::byte frame[sizeof(RawHeader) + 2];
  RawHeader header{2, 0, 0};
  std::memcpy(frame, &header, sizeof(header));
  std::memcpy(frame + sizeof(header), "hi", 2);
  int fds[] = {pipe_write.get()};
  write_raw(a.fileno(), frame, fds);
  pipe_write.reset();
  EXPECT_EQ(text_of(b.recv_bytes()), "hi");
  // Only the copy the receiver got could keep the pipe open: it was closed.
  EXPECT_EQ(mproc::wait({pipe_read.get()}, 5s).size(), 1u);
  char c;
  EXPECT_EQ(::read(pipe_read.get(), &c, 1), 0);
}

TEST(ConnectionHostilePeer, DescriptorsThatCannotBeReceivedCostTheMessageNotTheConnection) {
  constexpr int kRoom = 4;  // descriptors the receiver can still open (the sanitizers want some)
  constexpr int kSent = 12;
  auto [a, b] = Pipe();
  auto child = ChildProcess::fork([b = b]() mutable {
    int lowest_free = ::dup(0);
    if (lowest_free < 0) return 10;
    ::close(lowest_free);
    rlimit limit{static_cast<rlim_t>(lowest_free + kRoom), static_cast<rlim_t>(lowest_free + kRoom)};
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return 11;
    try {
      (void)b.recv<std::vector<Connection>>();
      return 12;
    } catch (const mproc::ProcessError& e) {
      if (std::string(e.what()).find("descriptors") == std::string::npos) return 13;
    }
    // The message's descriptors were all closed, and the next message comes whole.
    int after = ::dup(0);
    if (after != lowest_free) return 14;
    ::close(after);
    return b.recv<int>() == 42 ? 0 : 15;
  });
  std::vector<Connection> ends;
  for (int i = 0; i < kSent / 2; ++i) {
    auto [x, y] = Pipe();
    ends.push_back(x);
    ends.push_back(y);
  }
  a.send(ends);
  a.send(42);
  EXPECT_EQ(child.wait(), 0);
}

TEST(ConnectionBytes, RecvBytesIntoWritesAtTheOffsetOrThrowsBufferTooShort) {
  auto [a, b] = Pipe();
  a.send_bytes(std::string_view("abc"));
  a.send_bytes(std::string_view("a longer message"));
  a.send_bytes(std::string_view("next"));
  std::vector<std::byte> buffer(8, std::byte{'.'});
  EXPECT_EQ(b.recv_bytes_into(buffer, 2), 3u);
  EXPECT_EQ(text_of(buffer), "..abc...");
  try {
    b.recv_bytes_into(buffer, 2);
    ADD_FAILURE() << "a 16-byte message fitted in 6 bytes";
  } catch (const mproc::BufferTooShort& e) {
    EXPECT_EQ(text_of(e.message()), "a longer message");
  }
  EXPECT_EQ(b.recv_bytes_into(buffer), 4u);  // the connection goes on
  expect_throw_containing<mproc::UsageError>([&] { b.recv_bytes_into(buffer, 9); }, "offset");
}

TEST(ConnectionPoll, NeverConsumesOrSplitsAMessage) {
  auto [a, b] = Pipe();
  EXPECT_FALSE(b.poll());
  EXPECT_FALSE(b.poll(10ms));
  std::string big(300000, 'x');  // larger than the receive buffer
  std::thread sender([a = a, &big]() mutable { a.send(big); a.send(7); });
  EXPECT_TRUE(b.poll(mproc::forever));
  EXPECT_TRUE(b.poll());
  EXPECT_EQ(b.recv<std::string>(), big);
  EXPECT_TRUE(b.poll(5s));
  EXPECT_EQ(b.recv<int>(), 7);
  sender.join();
  EXPECT_FALSE(b.poll());
}

TEST(ConnectionEnd, EOFErrorOnceThePeerHasClosedAndNothingIsLeft) {
  auto [a, b] = Pipe();
  a.send(1);
  a.send(2);
  a.close();
  EXPECT_TRUE(b.poll());
  EXPECT_EQ(b.recv<int>(), 1);
  EXPECT_EQ(b.recv<int>(), 2);
  EXPECT_TRUE(b.poll());  // readable: a receive would throw EOFError at once
  expect_throw_containing<mproc::EOFError>([&] { (void)b.recv<int>(); }, "closed the connection");
  expect_throw_containing<mproc::EOFError>([&] { (void)b.recv_bytes(); }, "closed the connection");
}

TEST(ConnectionEnd, EOFInTheMiddleOfAMessageIsEOFError) {
  auto sockets = mproc::os::socket_pair();
  ASSERT_TRUE(sockets.ok());
  Connection reader = Connection::from_socket(std::move(sockets.value.first));
  // A header announcing 100 bytes, then 3 of them, then the end.
  std::uint64_t header[2] = {100, 0};
  ASSERT_FALSE(mproc::os::write_all(sockets.value.second.get(), std::as_bytes(std::span(header))));
  ASSERT_FALSE(mproc::os::write_all(sockets.value.second.get(), std::as_bytes(std::span("abc", 3))));
  sockets.value.second.reset();
  expect_throw_containing<mproc::EOFError>([&] { (void)reader.recv_bytes(); }, "middle of a message");
}

TEST(ConnectionEnd, SendingToAClosedPeerIsAnErrorNotADeath) {
  auto [a, b] = Pipe();
  b.close();
  try {
    for (int i = 0; i < 1000; ++i) a.send(std::string(10000, 'x'));
    ADD_FAILURE() << "sent to a closed peer";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::broken_pipe) << e.what();
  }
}

TEST(ConnectionClose, ClosedEndRefusesEverythingAndCopiesSeeIt) {
  auto [a, b] = Pipe();
  Connection copy = a;
  EXPECT_EQ(copy, a);
  a.close();
  a.close();  // harmless
  EXPECT_TRUE(copy.closed());
  EXPECT_FALSE(copy.readable());
  expect_throw_containing<mproc::UsageError>([&] { copy.send(1); }, "closed connection");
  expect_throw_containing<mproc::UsageError>([&] { (void)copy.recv<int>(); }, "closed connection");
  expect_throw_containing<mproc::UsageError>([&] { (void)copy.fileno(); }, "closed connection");
  EXPECT_TRUE(Connection().closed());
}

// A value whose encoding fails halfway.
struct Explosive {
  int before = 1;
  template <class Archive>
  void save(Archive& ar) const {
    ar(before);
    throw std::runtime_error("cannot encode this");
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(before);
  }
};

TEST(ConnectionErrors, EncodingFailureThrowsAtTheCallAndSendsNothing) {
  auto [a, b] = Pipe();
  expect_throw_containing<std::runtime_error>([&] { a.send(Explosive{}); }, "cannot encode this");
  a.send(std::string("intact"));
  EXPECT_EQ(b.recv<std::string>(), "intact");
}

TEST(ConnectionErrors, WrongTypeIsDecodeErrorAndTheMessageIsConsumed) {
  auto [a, b] = Pipe();
  a.send(42);
  a.send(std::string("next"));
  EXPECT_THROW((void)b.recv<std::string>(), mproc::DecodeError);
  EXPECT_EQ(b.recv<std::string>(), "next");
}

std::uint64_t checksum(std::span<const char> data) {
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < data.size(); i += 4093) sum = sum * 31 + static_cast<unsigned char>(data[i]);
  return sum + data.size();
}

TEST(ConnectionLarge, QuarterGibibyteMessagesCrossIntact) {
  constexpr std::size_t kSize = 256u << 20;
  auto [parent_end, child_end] = Pipe();
  auto child = ChildProcess::fork([child_end = child_end]() mutable {
    std::vector<char> data(kSize);
    for (std::size_t i = 0; i < kSize; i += 4093) data[i] = static_cast<char>(i / 4093);
    child_end.send(data);
    child_end.send_bytes(std::as_bytes(std::span(data)));
    child_end.send(checksum(data));
    return 0;
  });
  auto value = parent_end.recv<std::vector<char>>();
  auto bytes = parent_end.recv_bytes();
  auto expected = parent_end.recv<std::uint64_t>();
  ASSERT_EQ(value.size(), kSize);
  ASSERT_EQ(bytes.size(), kSize);
  EXPECT_EQ(checksum(value), expected);
  EXPECT_EQ(checksum({reinterpret_cast<const char*>(bytes.data()), bytes.size()}), expected);
  EXPECT_EQ(child.wait(), 0);
}

TEST(ConnectionHandles, AConnectionTravelsToAProcessAlreadyRunning) {
  auto [control_parent, control_child] = Pipe();
  auto child = ChildProcess::fork([control_child = control_child]() mutable {
    // This Pipe did not exist when the child was forked.
    Connection late = control_child.recv<Connection>();
    late.send(std::string("through the late pipe"));
    return 0;
  });
  auto [mine, theirs] = Pipe();
  control_parent.send(theirs);
  theirs.close();
  EXPECT_EQ(mine.recv<std::string>(), "through the late pipe");
  EXPECT_EQ(child.wait(), 0);
  expect_throw_containing<mproc::EOFError>([&] { (void)mine.recv<int>(); }, "closed");
}

// Processes that share a receiving end and take turns each get whole
// messages: a receive takes exactly one message off the socket.
TEST(ConnectionShared, AReceiverTakesOneMessageAndLeavesTheRestToOthers) {
  auto [a, b] = Pipe();
  auto [report, report_peer] = Pipe();
  a.send(std::string("first"));
  a.send(std::string(200000, 's'));
  a.send(std::string("third"));
  auto child = ChildProcess::fork([b = b, report_peer = report_peer]() mutable {
    report_peer.send(b.recv<std::string>());
    return 0;
  });
  EXPECT_EQ(report.recv<std::string>(), "first");
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(b.recv<std::string>(), std::string(200000, 's'));
  EXPECT_EQ(b.recv<std::string>(), "third");
  EXPECT_FALSE(b.poll());
}

TEST(ConnectionWait, ReturnsWhatIsReadyAmongConnectionsSentinelsAndDescriptors) {
  auto [a1, b1] = Pipe();
  auto [a2, b2] = Pipe();
  mproc::Process sleeper([] { std::this_thread::sleep_for(200ms); });
  sleeper.start();

  auto none = mproc::wait({b1, b2, sleeper.sentinel()}, 20ms);
  EXPECT_TRUE(none.empty());

  a2.send(1);
  auto ready = mproc::wait({b1, b2, sleeper.sentinel()}, 5s);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_TRUE(ready[0] == b2);
  ASSERT_NE(ready[0].connection(), nullptr);
  EXPECT_EQ(*ready[0].connection(), b2);
  EXPECT_EQ(b2.recv<int>(), 1);

  auto ended = mproc::wait({b1, b2, sleeper.sentinel()});
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_TRUE(ended[0] == sleeper.sentinel());
  sleeper.join();

  // A message left pending by recv_bytes(maxlength) counts as ready.
  a1.send(1);
  EXPECT_THROW((void)b1.recv_bytes(1), mproc::ProcessError);
  auto pending = mproc::wait({b1}, 0ms);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(b1.recv<int>(), 1);
  EXPECT_TRUE(mproc::wait({b1}, 0ms).empty());
}

}  // namespace
