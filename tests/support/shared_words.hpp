// Memory shared with forked children, for tests to count what children did
// without relying on the shared objects under test.

#pragma once

#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <thread>

namespace mproc::testing {

class SharedWords {
 public:
  explicit SharedWords(std::size_t count = 16) : count_(count) {
    void* memory = ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) std::abort();
    words_ = static_cast<std::atomic<long>*>(memory);
  }
  ~SharedWords() { ::munmap(words_, bytes()); }
  SharedWords(const SharedWords&) = delete;
  SharedWords& operator=(const SharedWords&) = delete;

  std::atomic<long>& operator[](std::size_t i) { return words_[i]; }
  // The same memory as a plain, unsynchronized counter (for mutual exclusion tests).
  volatile long& plain(std::size_t i) { return *reinterpret_cast<volatile long*>(&words_[i]); }

 private:
  std::size_t bytes() const { return count_ * sizeof(std::atomic<long>); }
  std::size_t count_;
  std::atomic<long>* words_;
};

// Waits (polling each millisecond) until `word` reaches `value`, at most
// 10 s; whether it did.
inline bool reaches(std::atomic<long>& word, long value) {
  for (int i = 0; i < 10000 && word.load() < value; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return word.load() >= value;
}

}  // namespace mproc::testing
