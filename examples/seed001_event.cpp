// Seed 001, "Synchronization" / "Event": one process waits for an Event that
// another sets three seconds later.

#include <chrono>
#include <iostream>
#include <thread>

#include <mproc/mproc.hpp>

void wait_for_event(mproc::Event e) {
  std::cout << "Waiting for event to be set..." << std::endl;
  e.wait();
  std::cout << "Event has been set, continuing with the process." << std::endl;
}

void trigger_event(mproc::Event e) {
  std::this_thread::sleep_for(std::chrono::seconds(3));
  std::cout << "Triggering event" << std::endl;
  e.set();
}

void run() {
  mproc::Event e;

  mproc::Process p1(wait_for_event, e);
  mproc::Process p2(trigger_event, e);

  p1.start();
  p2.start();

  p1.join();
  p2.join();
}

int main() { run(); }
