#include <cstdio>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

struct Job {
  std::string name;
  std::vector<int> inputs;
};

int sum_plus(int base, const std::vector<int>& xs) {
  for (int x : xs) base += x;
  return base;
}

int main() {
  Job job{"sum", {1, 2, 3}};
  Job back = mproc::decode<Job>(mproc::encode(job).bytes());
  mproc::Function<int(const std::vector<int>&)> f = mproc::partial(sum_plus, 36);
  auto g = mproc::decode<decltype(f)>(mproc::encode(f).bytes());
  std::printf("consumer %s %d\n", back.name.c_str(), g(back.inputs));
  return g(back.inputs) == 42 ? 0 : 1;
}
