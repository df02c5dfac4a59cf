// expect: success
// The positive control: the same command line accepts what can cross, so the
// failures above are the messages and not a broken command.
#include <map>
#include <string>
#include <vector>
#include <mproc/mproc.hpp>
struct Order { int id; std::string customer; std::vector<double> prices; };
int twice(int x) { return 2 * x; }
int main() {
  auto message = mproc::encode(std::map<std::string, Order>{});
  mproc::Function<int(int)> f = mproc::partial([](int a, int b) { return a + b; }, 1);
  mproc::Function<int(int)> g = &twice;
  (void)message;
  return f(1) + g(1) == 6 ? 0 : 1;
}
