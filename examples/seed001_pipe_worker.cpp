// Seed 001, "Pipe": a child sends a message through one end of a Pipe; the
// parent receives it at the other.

#include <iostream>
#include <string>

#include <mproc/mproc.hpp>

void worker(mproc::Connection connection) {
  connection.send(std::string("Hello from the child process!"));
  connection.close();
}

int main() {
  auto [parent_connection, child_connection] = mproc::Pipe();
  mproc::Process p(worker, child_connection);
  p.start();
  std::cout << parent_connection.recv<std::string>() << std::endl;  // the child's message
  p.join();
}
