// Shared memory: anonymous memory files (memfd), named POSIX segments
// (/dev/shm), and their mappings.

#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "mproc/unique_fd.hpp"
#include "os/error.hpp"

namespace mproc::os {

// A MAP_SHARED mapping, unmapped on destruction.
class Mapping {
 public:
  Mapping() = default;
  Mapping(std::byte* data, std::size_t size) : data_(data), size_(size) {}
  Mapping(Mapping&& other) noexcept : data_(other.data_), size_(other.size_) { other.data_ = nullptr; other.size_ = 0; }
  Mapping& operator=(Mapping&& other) noexcept;
  ~Mapping() { reset(); }

  std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::span<std::byte> bytes() const noexcept { return {data_, size_}; }
  void reset() noexcept;

 private:
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

// Replaces the pages of `mapping` in place with an inaccessible reservation
// (PROT_NONE, no memory behind it): an access through a stale pointer then
// faults instead of reaching whatever else would be mapped at that address.
// `mapping` keeps the address range and unmaps the reservation on reset().
Error make_inaccessible(const Mapping& mapping) noexcept;

// An anonymous memory file of `size` bytes (zero-filled, close-on-exec),
// named `name` in /proc/self/fd for whoever looks.
Result<UniqueFd> memory_file(const char* name, std::size_t size) noexcept;

// Maps all `size` bytes of `fd`, readable and writable, shared.
Result<Mapping> map_shared(int fd, std::size_t size) noexcept;

// The size of the file behind `fd`.
Result<std::size_t> file_size(int fd) noexcept;

// shm_open: creates a new segment (failing with EEXIST if the name is
// taken), or opens an existing one (ENOENT if there is none).
Result<UniqueFd> shm_create(const std::string& name, std::size_t size) noexcept;
Result<UniqueFd> shm_attach(const std::string& name) noexcept;
Error shm_remove(const std::string& name) noexcept;
Error shm_remove(const char* name) noexcept;  // async-signal-safe

// Private anonymous memory of `size` bytes, zero-filled. Async-signal-safe.
Result<Mapping> map_private(std::size_t size) noexcept;

// The system's page size.
std::size_t page_size() noexcept;

}  // namespace mproc::os
