// libFuzzer target for the decoder (`make fuzz`): any input must decode or
// throw DecodeError / NotTransferableError, never crash, hang, leak or
// allocate beyond the input. Decoded functions are never called.

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_types.hpp"

namespace {

int null_fd() {
  static int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  std::uint8_t selector = data[0];
  std::size_t buffer_count = data[1] % 3;
  input = input.subspan(2);
  if (input.size() < buffer_count * 2) return 0;
  std::vector<std::size_t> sizes;
  for (std::size_t i = 0; i < buffer_count; ++i) {
    std::uint16_t n;
    std::memcpy(&n, input.data() + 2 * i, 2);
    sizes.push_back(n);
  }
  input = input.subspan(buffer_count * 2);
  std::vector<mproc::ByteView> buffers;
  for (std::size_t n : sizes) {
    if (n > input.size()) return 0;
    buffers.push_back(input.last(n));
    input = input.first(input.size() - n);
  }

  mproc::UniqueFd fds[2] = {mproc::UniqueFd(dup(null_fd())), mproc::UniqueFd(dup(null_fd()))};
  fuzz::with_type(selector, [&]<class T>() {
    try {
      T value = mproc::decode<T>(input, buffers, fds);
      (void)value;
    } catch (const mproc::DecodeError&) {
    } catch (const mproc::NotTransferableError&) {
    }
  });
  return 0;
}
