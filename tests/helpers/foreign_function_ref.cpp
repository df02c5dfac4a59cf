// Another binary than the tests: writes two length-prefixed messages to the
// descriptor named by argv[1], a Function<int(int)> and a plain int(*)(int).
// Their references name this binary's build id, which the tests do not have.

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <span>

#include "mproc/mproc.hpp"

namespace {

int quadruple(int x) { return 4 * x; }

bool write_all(int fd, std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n <= 0) return false;
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
  return true;
}

bool send_message(int fd, std::span<const std::byte> bytes) {
  std::uint64_t size = bytes.size();
  return write_all(fd, std::as_bytes(std::span(&size, 1))) && write_all(fd, bytes);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  int fd = std::atoi(argv[1]);
  mproc::Function<int(int)> function = [](int x) { return x + 1; };
  int (*pointer)(int) = &quadruple;
  bool sent = send_message(fd, mproc::encode(function).bytes()) &&
              send_message(fd, mproc::encode(pointer).bytes());
  return sent ? 0 : 1;
}
