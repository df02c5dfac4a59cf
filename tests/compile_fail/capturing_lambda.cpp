// expect: a capturing lambda cannot cross a process boundary
#include <mproc/mproc.hpp>
int main() {
  int offset = 3;
  mproc::Function<int(int)> f = [offset](int x) { return x + offset; };
  return f(1);
}
