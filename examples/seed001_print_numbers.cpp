// Seed 001, "Creating a Process": a child prints 1 to 5; the parent waits.

#include <iostream>

#include <mproc/mproc.hpp>

void print_numbers() {
  for (int i = 1; i <= 5; ++i) std::cout << i << '\n';
}

int main() {
  mproc::Process process(print_numbers);  // creating a process
  process.start();                         // starting the process
  process.join();                          // wait for the process to complete
  std::cout << "Process finished execution." << std::endl;
}
