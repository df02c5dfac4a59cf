// expect: has no serialize.Archive&. .or save/load.
#include <mproc/mproc.hpp>
class Secret {
 public:
  explicit Secret(int v) : v_(v) {}
  Secret() = default;
 private:
  int v_ = 0;
};
int main() { (void)mproc::encode(Secret(1)); }
