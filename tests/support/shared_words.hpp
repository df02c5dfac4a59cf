// Memory shared with forked children, for tests to count what children did
// without relying on the shared objects under test.

#pragma once

#include <sys/mman.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>

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

}  // namespace mproc::testing
