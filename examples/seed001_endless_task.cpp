// Seed 001, "Terminating Processes": a child runs forever until terminate().

#include <chrono>
#include <iostream>
#include <thread>

#include <mproc/mproc.hpp>

void endless_task() {
  for (;;) {
    std::cout << "Running..." << std::endl;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

int main() {
  mproc::Process p(endless_task);
  p.start();
  std::this_thread::sleep_for(std::chrono::seconds(5));
  p.terminate();
  p.join();
  std::cout << "exitcode: " << *p.exitcode() << std::endl;  // -15: ended by SIGTERM
}
