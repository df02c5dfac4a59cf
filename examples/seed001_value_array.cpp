// Seed 001, "Value and Array": four processes each add 1 to a shared Value
// and to every element of a shared Array.

#include <cstddef>
#include <iostream>
#include <mutex>
#include <ranges>
#include <vector>

#include <mproc/mproc.hpp>

void update_shared_value(mproc::Value<int> shared_value, mproc::Array<int> shared_array) {
  {
    // Python's `shared_value.value += 1` reads and writes in two steps, each
    // under the lock; holding the lock across both makes the increment
    // exact instead of usually so.
    std::scoped_lock hold(shared_value);
    shared_value.set_value(shared_value.value() + 1);
  }
  for (std::size_t i = 0; i < shared_array.size(); ++i) shared_array[i] += 1;
}

void print_list(const std::vector<int>& values) {
  std::cout << '[';
  for (std::size_t i = 0; i < values.size(); ++i) std::cout << (i ? ", " : "") << values[i];
  std::cout << ']';
}

int main() {
  mproc::Value<int> shared_value(0);                        // Value('i', 0)
  mproc::Array<int> shared_array(std::views::iota(0, 5));   // Array('i', range(5))

  std::vector<mproc::Process> processes;
  for (int i = 0; i < 4; ++i) processes.emplace_back(update_shared_value, shared_value, shared_array);
  for (auto& p : processes) p.start();
  for (auto& p : processes) p.join();

  std::cout << "Shared Value: " << shared_value.value() << std::endl;
  std::cout << "Shared Array: ";
  print_list(shared_array.to_vector());
  std::cout << std::endl;
}
