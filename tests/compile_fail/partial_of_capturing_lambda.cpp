// expect: a capturing lambda cannot cross a process boundary
#include <mproc/mproc.hpp>
int main() {
  int offset = 3;
  mproc::Function<int()> f = mproc::partial([offset](int x) { return x + offset; }, 1);
  return f();
}
