// Seed 001, "Contexts and start methods": set the start method to spawn,
// then start a process and join it.
//
// The seed prints nothing. Not in the seed: run() prints the child's exit
// code and the method it was started with, one line, so that the output
// check shows the child really ran, and ran under spawn.

#include <iostream>

#include <mproc/mproc.hpp>

void worker() {
  // Code for each worker process
}

void run() {
  // Set the start method (e.g., "fork", "spawn" or "forkserver")
  mproc::set_start_method("spawn");

  // Create and start a process. Under spawn the target must be able to
  // travel to a fresh run of this program: a plain function can.
  mproc::Process p(worker);
  p.start();
  p.join();

  std::cout << "exitcode " << *p.exitcode() << " (" << mproc::start_method_name(p.start_method()) << ")"
            << std::endl;
}

int main() { run(); }
