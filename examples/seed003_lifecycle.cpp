// Seed 003, "Process and exceptions": a process's state before start, while
// running, after terminate() and after close().

#include <chrono>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include <mproc/mproc.hpp>

void log(const std::string& message) {
  std::cout << '[' << mproc::current_process().name() << "]: " << message << std::endl;
}

std::string text(std::optional<int> value) { return value ? std::to_string(*value) : "None"; }
std::string text(bool value) { return value ? "True" : "False"; }

void work() { std::this_thread::sleep_for(std::chrono::seconds(10)); }

void print_info(const mproc::Process& process) {
  log("Is alive?: " + text(process.is_alive()));
  try {
    log("Sentinel: " + std::to_string(process.sentinel()));
  } catch (const mproc::UsageError&) {
    log("Process not started yet");
  }
  log("Exitcode: " + text(process.exitcode()));
}

int main() {
  mproc::Process process(work);

  log("== before start ==");
  print_info(process);

  log("== start ==");
  process.start();
  print_info(process);

  log("== terminate ==");
  process.terminate();
  // Usually still alive: the signal takes a moment to land (in Python too).
  log("Is alive? (before sleep): " + text(process.is_alive()));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  print_info(process);

  log("== close ==");
  process.close();
  try {
    print_info(process);
  } catch (const mproc::UsageError&) {
    log("The process is closed");
  }
}
