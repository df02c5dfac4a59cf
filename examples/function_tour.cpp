// Functions cross process boundaries by reference, as pickle sends functions
// by name: a plain function, a capture-less lambda, or partial(f, args...).

#include <cstdio>
#include <string>

#include <mproc/mproc.hpp>

int power(int base, int exponent) {
  int result = 1;
  for (int i = 0; i < exponent; ++i) result *= base;
  return result;
}

std::string greet(const std::string& greeting, const std::string& name) { return greeting + ", " + name + "!"; }

// What a receiving process does: decode the function and call it.
template <class Signature, class... Args>
auto receive_and_call(const mproc::EncodedMessage& message, Args... args) {
  auto f = mproc::decode<mproc::Function<Signature>>(message.bytes());
  return f(args...);
}

int main() {
  mproc::Function<int(int, int)> plain = &power;
  mproc::Function<int(int)> lambda = [](int x) { return x * x; };
  mproc::Function<int(int)> cube = mproc::partial(power, 3);  // power(3, x)
  mproc::Function<std::string(std::string)> hello = mproc::partial(greet, std::string("Hello"));

  auto m1 = mproc::encode(plain);
  auto m2 = mproc::encode(lambda);
  auto m3 = mproc::encode(cube);
  auto m4 = mproc::encode(hello);
  std::printf("power(2, 10)        -> %d\n", receive_and_call<int(int, int)>(m1, 2, 10));
  std::printf("[](x) { x * x }(12) -> %d\n", receive_and_call<int(int)>(m2, 12));
  std::printf("partial(power, 3)(4) -> %d\n", receive_and_call<int(int)>(m3, 4));
  std::printf("partial(greet, \"Hello\")(\"mproc\") -> %s\n",
              receive_and_call<std::string(std::string)>(m4, std::string("mproc")).c_str());
}
