// mproc/unique_fd.hpp
//
// UniqueFd owns one file descriptor. mproc's handles keep their kernel objects
// (sockets, memfds, pidfds) in UniqueFds, and the codec carries UniqueFds
// between processes out of band, as SCM_RIGHTS does (see codec.hpp).

#pragma once

#include <utility>

namespace mproc {

// UniqueFd
//
// A move-only owner of a file descriptor, closed when the owner is destroyed
// or reset. An empty UniqueFd holds -1.
class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  // Takes ownership of `fd` (which may be -1).
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  // UniqueFd::get()
  //
  // Returns the descriptor without giving up ownership, or -1 if empty.
  int get() const noexcept { return fd_; }

  // UniqueFd::valid()
  //
  // Returns whether a descriptor is held.
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }

  // UniqueFd::release()
  //
  // Gives up ownership and returns the descriptor; the caller must close it.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

  // UniqueFd::reset()
  //
  // Closes the held descriptor, if any, and takes ownership of `fd`. A close
  // error is ignored: the descriptor is gone either way, and retrying a close
  // after EINTR on Linux could close a descriptor another thread just opened.
  void reset(int fd = -1) noexcept;

  // UniqueFd::dup()
  //
  // Returns a new descriptor for the same open file, close-on-exec.
  // Throws std::system_error if the process is out of descriptors.
  UniqueFd dup() const;

 private:
  int fd_ = -1;
};

}  // namespace mproc
