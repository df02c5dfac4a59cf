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

// An inaccessible range of `size` bytes of address space (PROT_NONE, no
// memory behind it), into which map_fixed() later places pieces of a file
// that grows: the pieces then sit at fixed addresses, so that pointers into
// the earlier ones stay valid.
Result<Mapping> reserve_address_space(std::size_t size) noexcept;

// Maps bytes [offset, offset + size) of `fd` at `at`, inside a range from
// reserve_address_space(), readable and writable, shared.
Error map_fixed(int fd, std::byte* at, std::size_t offset, std::size_t size) noexcept;

// Sets the size of the file behind `fd` (new bytes read as zeros and take
// no memory until written).
Error resize_file(int fd, std::size_t size) noexcept;

// Gives the memory behind bytes [offset, offset + size) of `fd` back to the
// system; they read as zeros afterwards. The file keeps its size.
Error discard_file_range(int fd, std::size_t offset, std::size_t size) noexcept;

// An anonymous memory file like memory_file(), that can only grow: sealed
// against shrinking, so that no process holding it can cut the ground from
// under another's mapping (an access past the end is SIGBUS).
Result<UniqueFd> growing_memory_file(const char* name, std::size_t size) noexcept;

// Whether the file behind `fd` is sealed against shrinking.
Result<bool> sealed_against_shrinking(int fd) noexcept;

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
