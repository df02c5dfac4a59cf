// Named shared memory in tests: a guard that unlinks a segment however the
// test ends, and checks of /dev/shm.

#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "os/memory.hpp"

namespace mproc::testing {

inline bool shm_exists(const std::string& name) { return std::filesystem::exists("/dev/shm/" + name); }

// Polls /dev/shm until `name` is gone or `timeout` passes; whether it went.
inline bool wait_until_shm_gone(const std::string& name, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (shm_exists(name)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Unlinks segment `name` on destruction, if it still exists.
class ShmGuard {
 public:
  explicit ShmGuard(std::string name = {}) : name_(std::move(name)) {}
  ShmGuard(const ShmGuard&) = delete;
  ShmGuard& operator=(const ShmGuard&) = delete;
  ~ShmGuard() {
    if (!name_.empty()) (void)os::shm_remove("/" + name_);
  }
  void watch(std::string name) { name_ = std::move(name); }

 private:
  std::string name_;
};

// A name no other test (or test run) uses.
inline std::string unique_shm_name(const char* what) {
  static int counter = 0;
  return std::string("mproc_test_") + what + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

}  // namespace mproc::testing
