// Seed 001, "Unique Memory Space": a child changes its copy of a global; the
// parent's stays as it was.

#include <iostream>

#include <mproc/mproc.hpp>

int counter = 0;

void increment() {
  counter += 1;
  std::cout << "Counter in child process: " << counter << std::endl;
}

int main() {
  mproc::Process p(increment);
  p.start();
  p.join();
  std::cout << "Counter in main process: " << counter << std::endl;
}
