// Seed 001, "Daemon Processes": a daemonic child runs in the background and
// is stopped when the main program exits.

#include <chrono>
#include <iostream>
#include <thread>

#include <mproc/mproc.hpp>

void daemon_process() {
  for (;;) {
    std::cout << "Daemon process running..." << std::endl;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

int main() {
  mproc::Process d(daemon_process);
  d.set_daemon(true);
  d.start();
  // The main program runs for a few seconds.
  std::this_thread::sleep_for(std::chrono::seconds(5));
  std::cout << "main exits; the daemon goes with it" << std::endl;
}
