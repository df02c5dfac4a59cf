// Seed 001, "Synchronization" / "Lock": three processes print one item each,
// taking a shared Lock around the print, so that only one process at a time
// writes to standard output.

#include <chrono>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

void printer(const std::string& item, mproc::Lock lock) {
  std::scoped_lock hold(lock);  // with lock:
  std::cout << item << std::endl;
}

void run() {
  mproc::Lock lock;
  std::vector<std::string> items = {"tango", "foxtrot", "alpha"};
  for (const std::string& item : items) {
    mproc::Process p(printer, item, lock);
    p.start();
    // Not in the seed: which child reaches the lock first is up to the
    // scheduler; a moment between the starts keeps the items in order.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int main() {
  run();
  // As in Python, the program joins its children before it exits.
}
