// Seed 002, "Wrap the work in a Process class": CalculateE, a Process
// subclass whose run() sums the series for e until its Event is set, and
// hands the result back through a SimpleQueue.

#include <charconv>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include <mproc/mproc.hpp>

// calculate "e" to do some work, until exit_event is set.
double calculate_e(const mproc::Event& exit_event) {
  double k = 1.0;
  double e_value = 0.0;
  // Python's int never overflows; three seconds of this loop in C++ go far
  // past 2^31 iterations.
  std::uint64_t iteration = 0;
  // Looks at the Event only every 1000 iterations.
  while (iteration % 1000 != 0 || !exit_event.is_set()) {
    e_value += 1.0 / k;
    k *= static_cast<double>(iteration + 1);  // inf after 171 terms: 1/inf adds 0
    iteration += 1;
  }
  return e_value;
}

// Python's print(float): the shortest text that reads back as the same
// double (std::to_chars without a format gives exactly that).
std::string float_repr(double value) {
  char text[32];
  auto converted = std::to_chars(text, text + sizeof text, value);
  return std::string(text, converted.ptr);
}

class CalculateE : public mproc::Process {
 public:
  CalculateE() : Process(mproc::ProcessOptions{.name = "calculate_e_process"}) {}

  // Runs in the child: a fork of this object, so it sees the queue and the
  // Event made by the constructor.
  void run() override {
    double returned_e_value = calculate_e(exit_event);  // do the work (calculate "e")
    result_queue_.put(returned_e_value);                // return the value in the Queue
  }

  // The value of the computation: blocks until done; the first call takes
  // it from the queue, later calls return the same value.
  double get() {
    if (!result_) result_ = result_queue_.get();
    return *result_;
  }

  mproc::Event exit_event;  // will tell the process to stop

 private:
  // The child's members are its own copy: the result must come back
  // through a multiprocessing mechanism.
  mproc::SimpleQueue<double> result_queue_;
  std::optional<double> result_;  // the result will be placed here
};

int main() {
  CalculateE e_process;
  e_process.start();
  std::this_thread::sleep_for(std::chrono::seconds(3));  // do other useful stuff ...
  e_process.exit_event.set();                             // tell the process to stop
  std::cout << float_repr(e_process.get()) << std::endl;  // print e
  // Not joined, as in the seed: the program joins it on its way out.
}
