// expect: a capturing lambda cannot cross a process boundary
#include <mproc/mproc.hpp>
int main() {
  int offset = 3;
  mproc::Pool pool(1);
  return pool.apply([offset](int x) { return x + offset; }, 1);
}
