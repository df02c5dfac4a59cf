// Seed 001, "Synchronization" / "Semaphore": four processes share a resource
// that a Semaphore(2) lets at most two of them use at a time.

#include <chrono>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

void access_resource(mproc::Semaphore semaphore, int process_id) {
  {
    std::scoped_lock hold(semaphore);  // with semaphore:
    // Not in the seed: a moment before the first line. The process that
    // frees a place prints "released" at the very moment the next one gets
    // in; this keeps the leaving process's line first (in Python their order
    // is a toss-up).
    std::this_thread::sleep_for(200ms);
    std::cout << "Process " << process_id << " is accessing the resource" << std::endl;
    std::this_thread::sleep_for(2s);  // simulate resource access
  }
  std::cout << "Process " << process_id << " released the resource" << std::endl;
}

void run() {
  mproc::Semaphore semaphore(2);

  std::vector<mproc::Process> processes;
  for (int i = 0; i < 4; ++i) processes.emplace_back(access_resource, semaphore, i);

  for (auto& p : processes) {
    p.start();
    // Not in the seed: starts half a second apart, so that the processes
    // reach the semaphore in order (and 2 and 3 then wait in that order).
    std::this_thread::sleep_for(500ms);
  }
  for (auto& p : processes) p.join();
}

int main() { run(); }
