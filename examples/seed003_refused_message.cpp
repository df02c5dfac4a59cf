// Seed 003 shows that unpickling a message can run code chosen by its sender
// (its `dangerousClass.__reduce__`). An mproc message is data: it decodes
// into the type the receiver asks for, or is refused.

#include <iostream>
#include <string>

#include <mproc/mproc.hpp>

// What the sender would like the receiver to do.
struct DangerousClass {
  std::string function = "os.system";
  std::string argument = "shutdown now";
};

void log(const std::string& message) {
  std::cout << '[' << mproc::current_process().name() << "]: " << message << std::endl;
}

void send(mproc::Connection conn) { conn.send(DangerousClass{}); }

void recv(mproc::Connection conn) {
  log("recv the msg");
  try {
    conn.recv<std::string>();  // the receiver expects a string
  } catch (const mproc::DecodeError& e) {
    log(std::string("refused: ") +
        (std::string(e.what()).find("different type") != std::string::npos ? "the message holds a different type"
                                                                            : e.what()));
  }
}

int main() {
  auto [a, b] = mproc::Pipe();
  mproc::Process p1(send, a);
  mproc::Process p2(recv, b);
  p1.start();
  p1.join();
  p2.start();
  p2.join();

  // Even received as what it is, it is only data: nothing was called.
  a.send(DangerousClass{});
  DangerousClass data = b.recv<DangerousClass>();
  log("received as data: {" + data.function + ", " + data.argument + "}; nothing ran");
}
