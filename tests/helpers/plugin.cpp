// A library the function tests load with dlopen: references into it resolve
// while it is loaded and are refused once it is unloaded.

#include <cstddef>
#include <vector>

#include "mproc/mproc.hpp"

extern "C" int plugin_triple(int x) { return 3 * x; }

// Encodes a Function whose descriptor lives in this library.
extern "C" void plugin_encode_function(std::vector<std::byte>* out) {
  mproc::Function<int(int)> f = [](int x) { return x + 1000; };
  auto message = mproc::encode(f);
  out->assign(message.bytes().begin(), message.bytes().end());
}
