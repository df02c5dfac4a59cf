// Seed 003, "Shared ctypes Objects": a counter incremented by four processes
// without and with its lock, a c_char Array's value and raw bytes, and a
// RawArray of a million cells overwritten by four processes, without a
// lock, with one per cell, and with one held for the whole loop.

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

void log(const std::string& message) {
  std::cout << '[' << mproc::current_process().name() << "]: " << message << std::endl;
}

// Python's repr() of a bytes object: b'\x01\x02'.
std::string bytes_repr(const std::string& bytes) {
  std::string text = "b'";
  for (char byte : bytes) {
    auto c = static_cast<unsigned char>(byte);
    if (c == '\\' || c == '\'') {
      text += '\\';
      text += static_cast<char>(c);
    } else if (c >= 32 && c < 127) {
      text += static_cast<char>(c);
    } else {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      text += escaped;
    }
  }
  return text + "'";
}

// Runs `target(args...)` in four processes and waits for them. The
// processes wait for `go` before starting, so that they really run at the
// same time (the seed's unlocked counters lose updates only when they do).
template <class F, class... Args>
void run_four(F target, Args... args) {
  mproc::Event go;
  std::vector<mproc::Process> processes;
  for (int i = 0; i < 4; ++i) {
    processes.emplace_back([=]() mutable {
      go.wait();
      target(args...);
    });
  }
  for (auto& process : processes) process.start();
  go.set();
  for (auto& process : processes) process.join();
}

// --- In [14]: a counter -------------------------------------------------

void increment(mproc::Value<int> counter) {
  for (int i = 0; i < 100'000; ++i) {
    int value = counter.value();
    // Python's interpreter leaves a long gap between the read and the write;
    // C++ leaves a few nanoseconds, and a loaded machine may run the four
    // processes one after another. Yielding here lets the others run in
    // the gap, as they would in Python, so updates are lost every time.
    std::this_thread::yield();
    counter.set_value(value + 1);
  }
}

void increment_with_lock(mproc::Value<int> counter) {
  for (int i = 0; i < 100'000; ++i) {
    std::scoped_lock hold(counter);  // `with counter:`, the same as its get_lock()
    counter.set_value(counter.value() + 1);
  }
}

void counters() {
  mproc::Value<int> counter(0);
  run_four(increment, counter);
  log(std::to_string(counter.value()));

  counter = mproc::Value<int>(0);
  run_four(increment_with_lock, counter);
  log(std::to_string(counter.value()));
}

// --- In [15]: a c_char array --------------------------------------------

void increment_chars_with_lock(mproc::Array<char> array) {
  for (int i = 0; i < 10'000; ++i) {
    std::scoped_lock hold(array);
    array.set_value(array.value() + '\x01');
  }
}

void increment_chars(mproc::Array<char> array) {
  for (int i = 0; i < 10'000; ++i) array.set_value(array.value() + '\x01');
}

void char_array() {
  mproc::Array<char> array{1, 2, 3, '\0', 4};
  log(bytes_repr(array.value()));
  log(std::to_string(array.value().size()));
  log("Index 3: " + bytes_repr(std::string(1, array[3])));
  log("Index 4: " + bytes_repr(std::string(1, array[4])));
  array.set_value("\x01");
  log(bytes_repr(array.value()));
  array.set_value(array.value() + "\x01\x01\x01\x01");
  try {
    array.set_value(array.value() + "\x01");
  } catch (const std::length_error& exception) {
    log(std::string("ValueError caught: ") + exception.what());
  }
  array[0] = '\x02';
  log(bytes_repr(array.value()));
  log(bytes_repr(array.raw()));

  log("== test increment without lock ==");
  mproc::Array<char> chars(40'000);
  run_four(increment_chars, chars);
  log(std::to_string(chars.value().size()));

  log("== test increment with lock ==");
  chars = mproc::Array<char>(40'000);
  run_four(increment_chars_with_lock, chars);
  log(std::to_string(chars.value().size()));
}

// --- In [16]: RawArray cells ---------------------------------------------

void replace_with_lock(mproc::Lock lock, mproc::RawArray<int> raw_array, int number) {
  for (std::size_t n = 0; n < raw_array.size(); ++n) {
    std::scoped_lock hold(lock);
    raw_array[n] = number;
  }
}

void replace_with_lock_v2(mproc::Lock lock, mproc::RawArray<int> raw_array, int number) {
  std::scoped_lock hold(lock);
  for (std::size_t n = 0; n < raw_array.size(); ++n) raw_array[n] = number;
}

void replace(mproc::RawArray<int> raw_array, int number) {
  for (std::size_t n = 0; n < raw_array.size(); ++n) raw_array[n] = number;
}

// Starts one process per number 0..3 running `target(args..., raw_array, n)`.
template <class F, class... Args>
void run_numbered(F target, Args... args) {
  std::vector<mproc::Process> processes;
  for (int n = 0; n < 4; ++n) processes.emplace_back(target, args..., n);
  for (auto& process : processes) process.start();
  for (auto& process : processes) process.join();
}

void log_counts(const mproc::RawArray<int>& raw_array) {
  std::vector<int> listed_array = raw_array.to_vector();
  for (int value = 0; value < 4; ++value) {
    log(std::to_string(std::count(listed_array.begin(), listed_array.end(), value)));
  }
}

void raw_arrays() {
  log("== replace without lock ==");
  mproc::RawArray<int> raw_array(1'000'000);
  run_numbered(replace, raw_array);
  log_counts(raw_array);  // a random distribution

  log("== replace with lock ==");
  mproc::Lock lock;
  raw_array = mproc::RawArray<int>(1'000'000);
  run_numbered(replace_with_lock, lock, raw_array);
  log_counts(raw_array);  // a random distribution

  log("== replace with lock v2 ==");
  raw_array = mproc::RawArray<int>(1'000'000);
  run_numbered(replace_with_lock_v2, lock, raw_array);
  log_counts(raw_array);  // the last process to get the lock wrote every cell
}

int main() {
  counters();
  char_array();
  raw_arrays();
}
