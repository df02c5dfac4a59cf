// Seed 003, its queue cells, in order: In [2], "First taste" (two processes
// put into one Queue, qsize() is 2); In [4], "Pipes and Queues" (a taxi and
// a user talk through a Pipe, each noting what it sent and got in a Queue
// of its own, until an Event says the taxi arrived); In [5], a
// JoinableQueue filled by one process and drawn by another while the
// parent waits in join().
//
// Where the seed's order between processes is up to the scheduler, the
// program makes it fixed (each change is marked "Not in the seed").

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

// The seed's logger: '[%(processName)s]: %(message)s'.
void log(const std::string& message) {
  std::cout << '[' << mproc::current_process().name() << "]: " << message << std::endl;
}

void sleep(std::chrono::milliseconds duration) { std::this_thread::sleep_for(duration); }

// ---------------------------------------------------------------- In [2]

void worker(mproc::Queue<std::string> container, const std::string& item) {
  log("parent process: " + std::to_string(getppid()));
  log("process id: " + std::to_string(getpid()));
  container.put(item);
}

void cell_2() {
  mproc::Queue<std::string> fifo;

  mproc::Process process(worker, fifo, std::string("process"));
  process.start();
  process.join();

  // The seed asks for multiprocessing.get_context('fork') here. mproc has no
  // contexts yet, and its one start method is fork, so the default Process
  // is what that context makes. Python names the fork context's processes
  // "ForkProcess-N" (after their class) from the same counter; the name is
  // set by hand to match.
  mproc::Process fork_process(worker, fifo, std::string("fork"));
  fork_process.set_name("Fork" + fork_process.name());
  fork_process.start();
  fork_process.join();

  // put() has finished with each item when it returns: both are counted.
  log(std::to_string(fifo.qsize()));
}

// ---------------------------------------------------------------- In [4]

// (time.time(), 'SEND' or 'GET', message)
using Register = std::tuple<double, std::string, std::string>;

double now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void send_register(mproc::Connection& conn, mproc::Queue<Register>& context, const std::string& message) {
  conn.send(message);
  context.put({now(), "SEND", message});
}

void recived_msg_register(mproc::Connection& conn, mproc::Queue<Register>& context) {
  std::string message = conn.recv<std::string>();
  context.put({now(), "GET", message});
}

void taxi(mproc::Connection conn, mproc::Queue<Register> context, mproc::Event event) {
  recived_msg_register(conn, context);
  send_register(conn, context, "Ok, going!");
  sleep(1s);
  send_register(conn, context, "I'm around");
  sleep(1s);
  send_register(conn, context, "I arrived");
  event.set();
  conn.close();
}

void user(mproc::Connection conn, mproc::Queue<Register> context, mproc::Event event) {
  send_register(conn, context, "Hello, I need a taxi near the Park");
  while (!event.is_set()) {
    if (conn.poll(500ms)) recived_msg_register(conn, context);
  }
  // Not in the seed: the user's half-second polls run in step with the
  // taxi's one-second sleeps, so a poll can time out just before "I
  // arrived" comes and the Event be set before the loop looks again; the
  // seed's user then never reads it. The taxi sent it before setting the
  // Event, so it is in the pipe by now: read what is left.
  while (conn.poll()) recived_msg_register(conn, context);
}

// A CSV field, quoted when it holds a comma or a quote.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + '"';
}

// A time as the notebook's copy of the table shows it: pandas displays the
// float with 7 significant digits (1.610905e+09), read back as 1610905000.0.
std::string table_time(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6e", seconds);
  std::snprintf(text, sizeof text, "%.1f", std::strtod(text, nullptr));
  return text;
}

void cell_4() {
  mproc::Event event;
  mproc::Queue<Register> taxi_context;
  mproc::Queue<Register> user_context;
  auto [taxi_connection, user_connection] = mproc::Pipe();
  mproc::Process taxi_process(mproc::ProcessOptions{.name = "taxi"}, taxi, taxi_connection, taxi_context, event);
  mproc::Process user_process(mproc::ProcessOptions{.name = "user"}, user, user_connection, user_context, event);
  taxi_process.start();
  user_process.start();
  taxi_process.join();
  user_process.join();

  std::vector<std::vector<std::string>> messages_context_data;
  while (!taxi_context.empty()) {
    auto [seconds, action, message] = taxi_context.get();
    messages_context_data.push_back({table_time(seconds), action, message});
  }
  for (auto& data : messages_context_data) {
    auto [seconds, action, message] = user_context.get();
    data.insert(data.end(), {table_time(seconds), action, message});
  }

  // messages_context.head(): the notebook's copy shows the DataFrame as
  // CSV, a row for each level of its column MultiIndex, then the rows.
  std::cout << "Unnamed: 0_level_0,Taxi POV,Taxi POV,Taxi POV,User POV,User POV,User POV\n"
            << "Unnamed: 0_level_1,Time,Action,Message,Time,Action,Message\n";
  for (std::size_t row = 0; row < messages_context_data.size() && row < 5; ++row) {
    std::cout << row;
    for (const std::string& field : messages_context_data[row]) std::cout << ',' << csv_field(field);
    std::cout << '\n';
  }
  std::cout << std::flush;
}

// ---------------------------------------------------------------- In [5]

void fill(mproc::JoinableQueue<std::string> content) { content.put("water"); }

void draw(mproc::JoinableQueue<std::string> content) {
  content.get();
  sleep(1s);
  log("task done");
  content.task_done();
  // Not in the seed: the parent, woken in join() by task_done(), logs
  // "queue join" while this process logs "sleep"; the notebook shows the
  // parent first. A 0.2 s pause here makes that the order every time.
  sleep(200ms);
  log("sleep");
  sleep(1s);
}

void cell_5() {
  mproc::JoinableQueue<std::string> content;
  mproc::Process fill_process(fill, content);
  fill_process.start();
  fill_process.join();
  mproc::Process draw_process(draw, content);
  draw_process.start();
  log("call queue join");
  content.join();
  log("queue join");
  draw_process.join();
  log("process join");
}

int main() {
  cell_2();
  std::cout << std::endl;
  // The notebook's cell 3 (examples/seed003_lifecycle.cpp) made Process-3,
  // and Python names each Process by a counter bumped when it is
  // constructed; this stands for it, so that the names below are the seed's
  // (taxi and user are 4 and 5, fill 6, draw 7).
  mproc::Process cell_3_process;
  cell_4();
  std::cout << std::endl;
  cell_5();
}
