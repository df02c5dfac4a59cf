// libFuzzer target for the decoder (`make fuzz`): any input must decode or
// throw DecodeError / NotTransferableError, never crash, hang, leak or
// allocate beyond what the input justifies (DecodeLimits::memory_factor
// times its size, plus 1 MiB: the budget; up to three times that while a
// vector grows, old and new storage both alive). Decoded functions are never
// called.

#include <fcntl.h>
#include <sanitizer/allocator_interface.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_types.hpp"

namespace {

int null_fd() {
  static int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return fd;
}

// Heap use while a decode runs, from the sanitizer's allocation hooks.
std::atomic<bool> tracking{false};
std::atomic<std::size_t> in_use{0};
std::atomic<std::size_t> peak{0};

void on_malloc(const volatile void*, std::size_t size) {
  if (!tracking.load(std::memory_order_relaxed)) return;
  std::size_t now = in_use.fetch_add(size, std::memory_order_relaxed) + size;
  std::size_t seen = peak.load(std::memory_order_relaxed);
  while (now > seen && !peak.compare_exchange_weak(seen, now)) {
  }
}

void on_free(const volatile void* p) {
  if (!tracking.load(std::memory_order_relaxed) || p == nullptr) return;
  std::size_t size = __sanitizer_get_allocated_size(const_cast<const void*>(p));
  std::size_t current = in_use.load(std::memory_order_relaxed);
  in_use.store(size > current ? 0 : current - size, std::memory_order_relaxed);
}

const int hooks_installed = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);

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
  in_use = 0;
  peak = 0;
  tracking = true;
  fuzz::with_type(selector, [&]<class T>() {
    try {
      T value = mproc::decode<T>(input, buffers, fds);
      (void)value;
    } catch (const mproc::DecodeError&) {
    } catch (const mproc::NotTransferableError&) {
    }
  });
  tracking = false;
  std::size_t budget = mproc::DecodeLimits{}.memory_factor * size + (1u << 20);
  // A growing vector holds its old storage and twice that at once; plus room
  // for an exception.
  if (hooks_installed != 0 && peak > 3 * budget + (64u << 10)) {
    std::fprintf(stderr, "decode of %zu bytes allocated %zu bytes at peak\n", size, peak.load());
    std::abort();
  }
  return 0;
}
