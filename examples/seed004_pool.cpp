// Seed 004, "The Pool Class": get_id_print run by a Pool's worker with
// apply_async; get_id_return's [parent, current] brought back with get();
// map(f, [1, 2, 3]) with f(x) = x*2. The functions are those of the pool
// example the seed links to (pool_example.py).
//
// Not in the seed: the program waits for get_id_print (the seed's Python
// lets the pool live on until the interpreter exits; here the pool's end
// terminates its workers), and checks that the ids get_id_return brings
// back are this process's and another's.

#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

// Python's print of a list: "[1, 2, 3]".
std::string to_list(const std::vector<int>& values) {
  std::string text = "[";
  for (std::size_t i = 0; i < values.size(); ++i) text += (i == 0 ? "" : ", ") + std::to_string(values[i]);
  return text + "]";
}

void get_id_print() {
  int pp = getppid();  // parent
  int p = getpid();    // current
  // One write, so that the two lines stay together.
  std::cout << "parent process: " + std::to_string(pp) + "\ncurrent process: " + std::to_string(p) << std::endl;
}

std::vector<int> get_id_return() {
  int pp = getppid();  // parent
  int p = getpid();    // current
  return {pp, p};
}

int f(int x) {
  int r = x * 2;
  return r;
}

int main() {
  mproc::Pool p;
  auto r = p.apply_async(get_id_print);
  r.get();

  mproc::Pool p2;
  auto r2 = p2.apply_async(get_id_return);
  std::vector<int> vals = r2.get();
  std::cout << "List of ids: " << to_list(vals) << '\n';
  std::cout << "Parent id: " << vals[0] << '\n';
  std::cout << "Current id: " << vals[1] << '\n';
  bool parent_is_us = vals[0] == getpid();
  bool worker_is_other = vals[1] != getpid();
  std::cout << std::boolalpha << "the worker's parent is this process: " << parent_is_us << '\n'
            << "the worker is another process: " << worker_is_other << std::endl;

  mproc::Pool p4;
  std::vector<int> r4 = p4.map(f, {1, 2, 3});
  std::cout << to_list(r4) << std::endl;
  return parent_is_us && worker_is_other ? 0 : 1;
}
