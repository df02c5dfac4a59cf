// Seed 001, "Queue": a child puts a message in a Queue; the parent gets it.

#include <iostream>
#include <string>

#include <mproc/mproc.hpp>

void worker(mproc::Queue<std::string> q) { q.put("Hello from the child process!"); }

void run() {
  mproc::Queue<std::string> q;
  mproc::Process p(worker, q);
  p.start();
  std::cout << q.get() << std::endl;  // the message from the child process
  p.join();
}

int main() { run(); }
