// expect: std::function cannot cross a process boundary
#include <functional>
#include <mproc/mproc.hpp>
int main() {
  mproc::ProcessPoolExecutor executor(1);
  std::function<int(int)> twice = [](int x) { return 2 * x; };
  return executor.submit(twice, 1).result();
}
