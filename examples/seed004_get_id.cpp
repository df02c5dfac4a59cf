// Seed 004: the process ids of the main program and of a child, and the
// child's view of its parent.

#include <unistd.h>

#include <iostream>

#include <mproc/mproc.hpp>

void get_id() {
  std::cout << "parent process: " << getppid() << '\n';
  std::cout << "current process: " << getpid() << std::endl;
}

int main() {
  int current = getpid();
  std::cout << "Current process: " << current << std::endl;
  mproc::Process p(get_id);
  p.start();
  p.join();
  // The same through mproc's own view, in the child.
  auto [reader, writer] = mproc::Pipe(false);
  mproc::Process q([writer = writer]() mutable { writer.send(*mproc::parent_process()->pid()); });
  q.start();
  std::cout << "the child's parent is this process: " << std::boolalpha << (reader.recv<int>() == current)
            << std::endl;
  q.join();
}
