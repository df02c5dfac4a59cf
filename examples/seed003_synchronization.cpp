// Seed 003, "Synchronization primitives", cells In [7] to In [13], in order:
// a Barrier with an action, whose first party is told so; a BoundedSemaphore
// released too often; an RLock shared by two Conditions
// across nested processes; a rhombus drawn by nested processes with a
// Lock-protected print; notify_all waking twenty nested processes;
// Condition.wait_for; Events waited for with a timeout.
//
// Where the seed's order between processes is up to the scheduler, the
// program makes it fixed (each change is marked "Not in the seed"): sleeps
// that order the lines with margins of at least 0.2 s, an Event where the
// seed sleeps and hopes, or lines gathered and printed sorted.

#include <algorithm>
#include <chrono>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

// The seed's logger: '[%(processName)s]: %(message)s'.
void log(const std::string& message) {
  std::cout << '[' << mproc::current_process().name() << "]: " << message << std::endl;
}

void sleep(std::chrono::milliseconds duration) { std::this_thread::sleep_for(duration); }

std::string repeat(const std::string& text, int times) {
  std::string result;
  for (int i = 0; i < times; ++i) result += text;
  return result;
}

// Python's f'{text: ^{width}}': centred, the odd space on the right. Counts
// characters, not bytes ("⧫" is three bytes of UTF-8).
std::string center(const std::string& text, int width) {
  int length = static_cast<int>(std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
  int padding = std::max(0, width - length);
  return repeat(" ", padding / 2) + text + repeat(" ", padding - padding / 2);
}

// ---------------------------------------------------------------- In [7]
// Ten processes put their number in a queue and meet at a Barrier whose
// action runs once, in the last to arrive; the first to arrive (index 0)
// says so. The parent then gets the first number put.

void queue_ready() { log("The stack is ready!"); }

void add_to_queue(mproc::Barrier barrier, mproc::Queue<int> queue_instance, int item) {
  log(std::to_string(item));
  queue_instance.put(item);
  if (barrier.wait() == 0) log("I'm going to be the FO!, att: " + std::to_string(item));
}

void cell_7() {
  int amount_of_process = 10;
  mproc::Queue<int> queue_instance;
  mproc::Barrier barrier(amount_of_process, queue_ready);
  std::vector<mproc::Process> processes;
  for (int process_number = 0; process_number < amount_of_process; ++process_number) {
    processes.emplace_back(add_to_queue, barrier, queue_instance, process_number);
  }
  for (auto& process : processes) process.start();
  for (auto& process : processes) process.join();
  log("FO: " + std::to_string(queue_instance.get()));
}

// ---------------------------------------------------------------- In [8]
// A BoundedSemaphore(3): the parent's acquire waits for a free place, and a
// release beyond the initial value is an error (Python's ValueError,
// mproc::UsageError here).

void connect(mproc::BoundedSemaphore bounded_semaphore) {
  std::scoped_lock hold(bounded_semaphore);  // with bounded_semaphore:
  log("semaphore acquired");
  sleep(3s);
  log("semaphore released");
}

void cell_8() {
  int amount_of_instances = 3;
  mproc::BoundedSemaphore bounded_semaphore(amount_of_instances);
  std::vector<mproc::Process> processes;
  for (int i = 0; i < amount_of_instances; ++i) processes.emplace_back(connect, bounded_semaphore);

  for (auto& process : processes) {
    process.start();
    // Not in the seed: the processes take the semaphore (and so give it
    // back) 0.3 s apart, in order.
    sleep(300ms);
  }

  sleep(1s);
  log("Try to acquire new semaphore");
  bounded_semaphore.acquire();
  log("New semaphore acquired");

  for (auto& process : processes) process.join();

  bounded_semaphore.release();
  try {
    bounded_semaphore.release();
  } catch (const mproc::UsageError&) {
    log("ValueError caught");
  }
}

// ---------------------------------------------------------------- In [9]
// Two Conditions over one RLock. Each of two processes starts a child that
// starts a child... (four deep), and every one waits on its Condition; one
// notify from the parent releases a whole chain, each process notifying the
// next.

void recursive(mproc::Condition condition, int recursivity_left) {
  sleep(500ms);
  condition.acquire();
  if (recursivity_left) {
    // Not joined here: as in Python, a process joins its children on its way out.
    mproc::Process recursion(recursive, condition, recursivity_left - 1);
    recursion.start();
  }
  log("waiting");
  condition.wait();
  sleep(500ms);
  condition.notify();
  log("release");
  condition.release();
}

void cell_9() {
  mproc::RLock r_lock;
  mproc::Condition cond_1(r_lock);
  mproc::Condition cond_2(r_lock);
  mproc::Process recursion_1(recursive, cond_1, 3);
  recursion_1.start();
  // Not in the seed: the second chain runs 0.25 s behind the first, so that
  // their "waiting" lines alternate in a fixed order.
  sleep(250ms);
  mproc::Process recursion_2(recursive, cond_2, 3);
  recursion_2.start();
  sleep(3s);
  {
    std::scoped_lock hold(cond_1);  // with cond_1:
    log("notify");
    cond_1.notify();
  }
  // Not in the seed: the first chain ends before the second is notified. In
  // the notebook the two chains' "release" lines interleave: each process
  // holds the shared RLock 0.5 s, and CPython's lock happened to go to the
  // process that had waited longest. Neither Python nor mproc promises that
  // order (mproc's lock goes to whoever takes it first), so the chains run
  // one after the other here; the rest is as in the seed.
  recursion_1.join();
  {
    std::scoped_lock hold(cond_2);  // with cond_2:
    log("notify");
    cond_2.notify();
  }
  recursion_2.join();
}

// ---------------------------------------------------------------- In [10]
// A rhombus: each nested process prints its line going down, waits on a
// Condition, and prints again when the one above it notifies, all through a
// print guarded by a Lock.

// The notebook's module-level print_lock, made by cell_10 (a forked child
// sees the same one).
mproc::Lock* print_lock = nullptr;

void locked_print(const std::string& msg) {
  std::scoped_lock hold(*print_lock);  // with print_lock:
  sleep(100ms);
  std::cout << msg << std::endl;
}

void rhombo(mproc::Condition condition, mproc::Condition recursion_reached_condition, int dimensions,
            int recursivity_left) {
  if (!recursivity_left) {
    std::scoped_lock hold(recursion_reached_condition);
    recursion_reached_condition.notify();
    return;
  }
  std::string name = mproc::current_process().name();
  std::string side = repeat(" ", dimensions);
  locked_print("||" + side + center(repeat("⧫", dimensions - recursivity_left + 2), dimensions) + side + "|| " +
               name);
  condition.acquire();
  mproc::Process subprocess(rhombo, condition, recursion_reached_condition, dimensions, recursivity_left - 2);
  subprocess.start();
  condition.wait();
  locked_print("||" + side + center(repeat("⧫", recursivity_left), dimensions) + side + "|| " + name);
  condition.notify();
  condition.release();
  subprocess.join();
}

void cell_10() {
  mproc::Lock the_print_lock;
  print_lock = &the_print_lock;
  int dimension = 10;

  mproc::RLock r_lock;
  mproc::Lock lock;
  mproc::Condition condition(r_lock);
  mproc::Condition recursion_reached_condition(lock);
  mproc::Process rhombo_process(rhombo, condition, recursion_reached_condition, dimension, dimension);
  // (The notebook's copy of the output lacks the two "OO===...===OO" lines.)
  locked_print("OO" + repeat("=", dimension * 3) + "OO");
  locked_print("||" + repeat(" ", dimension * 3) + "||");
  rhombo_process.start();
  {
    std::scoped_lock hold(lock);  // with lock:
    recursion_reached_condition.wait();
    std::scoped_lock hold_r_lock(r_lock);  // with r_lock:
    condition.notify();
  }
  rhombo_process.join();
  locked_print("||" + repeat(" ", dimension * 3) + "||");
  locked_print("OO" + repeat("=", dimension * 3) + "OO");
  print_lock = nullptr;
}

// ---------------------------------------------------------------- In [11]
// Twenty nested processes wait on one Condition; a single notify_all wakes
// them all, and they print in whatever order they get the lock back.

// Not in the seed: instead of printing its line, each woken process sends
// it to the parent (still holding the lock, as it printed), and the parent
// prints them sorted, widest first: the wake-up order is random, so the
// output shows instead that all twenty woke, each once.
//
// Also not in the seed: the notebook sleeps 1 s and counts on all twenty
// waiting by then, but on a busy machine starting twenty nested processes
// can take most of a second, and one that began waiting after notify_all
// would wait for ever. The innermost call can take the lock only once every
// process above it waits, and says so through `all_waiting`.
void random_print(mproc::Condition condition, int dimension, int recursivity_left, mproc::Connection lines,
                  mproc::Event all_waiting) {
  if (!recursivity_left) {
    std::scoped_lock hold(condition);
    all_waiting.set();
    return;
  }
  condition.acquire();
  mproc::Process subprocess(random_print, condition, dimension, recursivity_left - 1, lines, all_waiting);
  subprocess.start();
  condition.wait();
  lines.send(center(repeat("#", recursivity_left), dimension));  // print(...)
  condition.release();
  subprocess.join();
}

void cell_11() {
  auto [reader, writer] = mproc::Pipe(false);
  mproc::RLock r_lock;
  mproc::Condition condition(r_lock);
  mproc::Event all_waiting;
  mproc::Process process(random_print, condition, 20, 20, writer, all_waiting);
  process.start();
  writer.close();  // the children hold it: if one fails to send, recv() ends with EOFError, not a hang
  all_waiting.wait();  // instead of the seed's time.sleep(1)
  {
    std::scoped_lock hold(r_lock);  // with r_lock:
    condition.notify_all();
  }
  process.join();

  std::vector<std::string> printed;
  for (int i = 0; i < 20; ++i) printed.push_back(reader.recv<std::string>());
  auto width = [](const std::string& line) { return std::count(line.begin(), line.end(), '#'); };
  std::sort(printed.begin(), printed.end(),
            [&](const std::string& a, const std::string& b) { return width(a) > width(b); });
  for (const std::string& line : printed) std::cout << line << '\n';
  log("Look this like a random thing?");  // Maybe not
}

// ---------------------------------------------------------------- In [12]
// Condition.wait_for: a process waits until a queue is empty, re-checking
// each time a helper process notifies; the parent takes the item after a
// while.

void notify(mproc::Condition condition) {
  std::scoped_lock hold(condition);  // with condition:
  condition.notify();
}

void cell_12() {
  mproc::Condition waiting_condition;
  mproc::Queue<int> queue_instance;  // the notebook's QUEUE_INSTANCE
  queue_instance.put(1);

  // Not in the seed (time.sleep(0.5)): the checks keep a half-second beat,
  // so that the time spent starting each helper process does not add up
  // (on a busy machine it did, and the parent's get() then came a check
  // early).
  auto next_check = std::chrono::steady_clock::now();
  auto wait_for = [&] {
    log("Waiting");
    bool is_empty = queue_instance.empty();
    log(std::string("Is empty? ") + (is_empty ? "True" : "False"));
    next_check += 500ms;
    std::this_thread::sleep_until(next_check);
    mproc::Process subprocess(notify, waiting_condition);
    subprocess.start();
    return is_empty;
  };

  auto waiting = [&](mproc::Condition condition) {
    std::scoped_lock hold(condition);  // with waiting_condition:
    next_check = std::chrono::steady_clock::now();
    condition.wait_for(wait_for);
    log("Queue is empty!");
  };

  mproc::Process process(waiting, waiting_condition);
  process.start();
  // Not in the seed (which sleeps 2 s): the get() lands midway between the
  // fourth check (at 1.5 s) and the fifth (at 2 s), not at the same moment
  // as the fifth.
  sleep(1750ms);
  int data = queue_instance.get();
  process.join();
  log(std::to_string(data));
}

// ---------------------------------------------------------------- In [13]
// Events with a timeout: set while the processes wait (they leave), set
// before they look (they leave at once), cleared (they give up after 2 s).

// Not in the seed: `turn` (0, 1, 2) delays the last line by 0.2 s a turn,
// and the parent starts the processes 0.4 s apart; the three processes
// then print in turn instead of in the scheduler's order.
void stay_home(mproc::Event rain_stopped, int turn) {
  bool rain_status = rain_stopped.is_set();
  log(std::string("Can leave home?: ") + (rain_status ? "Yes" : "No"));
  if (!rain_status) log("Wait for the rain to stop");
  bool wait = rain_stopped.wait(2s);
  sleep(turn * 200ms);
  if (wait) {
    log("Leave home");
  } else {
    log("The wait was very long...");
  }
}

void start_all(std::vector<mproc::Process>& processes) {
  for (std::size_t i = 0; i < processes.size(); ++i) {
    if (i != 0) sleep(400ms);  // Not in the seed: see stay_home
    processes[i].start();
  }
}

std::vector<mproc::Process> make_group(mproc::Event event) {
  std::vector<mproc::Process> processes;
  for (int i = 0; i < 3; ++i) processes.emplace_back(stay_home, event, i);
  return processes;
}

void cell_13() {
  log("== First group ==");
  mproc::Event event;
  auto processes = make_group(event);
  start_all(processes);
  sleep(1s);
  event.set();
  for (auto& process : processes) process.join();

  log("== Second group ==");
  processes = make_group(event);
  start_all(processes);
  sleep(1s);
  for (auto& process : processes) process.join();

  log("== Third group ==");
  processes = make_group(event);
  event.clear();
  start_all(processes);
  sleep(1s);
  for (auto& process : processes) process.join();
}

int main() {
  // The notebook's cells 1 to 6 made processes 1 to 9, and Python names
  // each Process by a counter bumped when it is constructed; these stand for
  // them, so that the names below are the seed's.
  std::vector<mproc::Process> earlier_cells;
  for (int i = 0; i < 9; ++i) earlier_cells.emplace_back();

  cell_7();
  std::cout << std::endl;
  cell_8();
  std::cout << std::endl;
  cell_9();
  std::cout << std::endl;
  cell_10();
  std::cout << std::endl;
  cell_11();
  std::cout << std::endl;
  cell_12();
  std::cout << std::endl;
  cell_13();
}
