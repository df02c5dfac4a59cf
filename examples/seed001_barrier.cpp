// Seed 001, "Barrier": three processes do their task, then wait for each
// other at a Barrier; none passes it before all have arrived.

#include <chrono>
#include <iostream>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

void task(mproc::Barrier barrier, int process_id) {
  std::cout << "Process " << process_id << " is performing its task" << std::endl;
  std::this_thread::sleep_for(std::chrono::seconds(2));
  barrier.wait();
  std::cout << "Process " << process_id << " passed the barrier" << std::endl;
}

int main() {
  mproc::Barrier barrier(3);

  std::vector<mproc::Process> processes;
  for (int i = 0; i < 3; ++i) processes.emplace_back(task, barrier, i);
  for (auto& p : processes) p.start();
  for (auto& p : processes) p.join();
}
