// libFuzzer target for the connection framing (`make fuzz`): whatever bytes a
// peer writes, receives end in a message or a documented error (EOFError,
// DecodeError, ProcessError, NotTransferableError), never a crash, a hang or
// an allocation beyond what the input justifies.
//
// Input layout: [4 operation bytes][the bytes the peer writes]. Operation i
// (cycled) picks the receive: recv<T> for a fuzz type, recv_bytes() with or
// without a small maxlength, or recv_bytes_into a small buffer.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "fuzz_types.hpp"
#include "os/socket.hpp"

namespace {

constexpr std::size_t kOperations = 4;
constexpr int kMaxReceives = 16;

// One receive; returns false once nothing more can come (end of stream, or
// a stream that lost its framing).
bool receive_once(mproc::Connection& reader, std::uint8_t operation) {
  try {
    switch (operation % 4) {
      case 0:
        fuzz::with_type(static_cast<std::uint8_t>(operation >> 2), [&]<class T>() { (void)reader.recv<T>(); });
        break;
      case 1:
        (void)reader.recv_bytes();
        break;
      case 2:
        (void)reader.recv_bytes(16);
        break;
      default: {
        std::vector<std::byte> buffer(32);
        (void)reader.recv_bytes_into(buffer, operation % 8);
        break;
      }
    }
  } catch (const mproc::EOFError&) {
    return false;
  } catch (const mproc::DecodeError&) {
  } catch (const mproc::BufferTooShort&) {
  } catch (const mproc::ProcessError&) {
  } catch (const mproc::NotTransferableError&) {
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < kOperations) return 0;
  auto sockets = mproc::os::socket_pair();
  if (!sockets.ok()) std::abort();
  mproc::Connection reader = mproc::Connection::from_socket(std::move(sockets.value.first));
  std::span<const std::byte> stream(reinterpret_cast<const std::byte*>(data) + kOperations, size - kOperations);
  // The peer writes everything then closes, from a thread: the input may
  // exceed what the socket buffers.
  std::thread peer([&, fd = std::move(sockets.value.second)]() mutable {
    (void)mproc::os::send_with_fds(fd.get(), stream, {});  // MSG_NOSIGNAL: EPIPE, not SIGPIPE
    fd.reset();
  });
  for (int i = 0; i < kMaxReceives; ++i) {
    if (!receive_once(reader, data[i % kOperations])) break;
  }
  reader.close();  // a peer blocked on a full socket gets EPIPE and ends
  peer.join();
  return 0;
}
