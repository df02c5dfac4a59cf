#include "os/memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "os/syscall.hpp"

namespace mproc::os {

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

void Mapping::reset() noexcept {
  if (data_ != nullptr) MPROC_SYSCALL(munmap)(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

Error make_inaccessible(const Mapping& mapping) noexcept {
  if (mapping.data() == nullptr) return {};
  void* data = MPROC_SYSCALL(mmap)(mapping.data(), mapping.size(), PROT_NONE,
                                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  if (data == MAP_FAILED) return Error::last("mmap");
  return {};
}

Result<UniqueFd> memory_file(const char* name, std::size_t size) noexcept {
  UniqueFd fd(MPROC_SYSCALL(memfd_create)(name, MFD_CLOEXEC));
  if (!fd.valid()) return {{}, Error::last("memfd_create")};
  if (MPROC_SYSCALL(ftruncate)(fd.get(), static_cast<off_t>(size)) != 0) return {{}, Error::last("ftruncate")};
  return {std::move(fd), {}};
}

Result<UniqueFd> growing_memory_file(const char* name, std::size_t size) noexcept {
  UniqueFd fd(MPROC_SYSCALL(memfd_create)(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return {{}, Error::last("memfd_create")};
  if (MPROC_SYSCALL(ftruncate)(fd.get(), static_cast<off_t>(size)) != 0) return {{}, Error::last("ftruncate")};
  if (MPROC_SYSCALL(fcntl)(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) != 0) return {{}, Error::last("fcntl")};
  return {std::move(fd), {}};
}

Result<bool> sealed_against_shrinking(int fd) noexcept {
  int seals = MPROC_SYSCALL(fcntl)(fd, F_GET_SEALS);
  if (seals < 0) return {false, Error::last("fcntl")};
  return {(seals & F_SEAL_SHRINK) != 0, {}};
}

Result<Mapping> map_shared(int fd, std::size_t size) noexcept {
  if (size == 0) return {{}, {}};
  void* data = MPROC_SYSCALL(mmap)(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) return {{}, Error::last("mmap")};
  return {Mapping(static_cast<std::byte*>(data), size), {}};
}

Result<Mapping> reserve_address_space(std::size_t size) noexcept {
  void* data = MPROC_SYSCALL(mmap)(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (data == MAP_FAILED) return {{}, Error::last("mmap")};
  return {Mapping(static_cast<std::byte*>(data), size), {}};
}

Error map_fixed(int fd, std::byte* at, std::size_t offset, std::size_t size) noexcept {
  void* data = MPROC_SYSCALL(mmap)(at, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
                                   static_cast<off_t>(offset));
  if (data == MAP_FAILED) return Error::last("mmap");
  return {};
}

Error resize_file(int fd, std::size_t size) noexcept {
  if (MPROC_SYSCALL(ftruncate)(fd, static_cast<off_t>(size)) != 0) return Error::last("ftruncate");
  return {};
}

Error discard_file_range(int fd, std::size_t offset, std::size_t size) noexcept {
  if (MPROC_SYSCALL(fallocate)(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                               static_cast<off_t>(size)) != 0) {
    return Error::last("fallocate");
  }
  return {};
}

Result<std::size_t> file_size(int fd) noexcept {
  struct stat st;
  if (MPROC_SYSCALL(fstat)(fd, &st) != 0) return {0, Error::last("fstat")};
  return {static_cast<std::size_t>(st.st_size), {}};
}

Result<UniqueFd> shm_create(const std::string& name, std::size_t size) noexcept {
  UniqueFd fd(MPROC_SYSCALL(shm_open)(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return {{}, Error::last("shm_open")};
  if (MPROC_SYSCALL(ftruncate)(fd.get(), static_cast<off_t>(size)) != 0) {
    Error error = Error::last("ftruncate");
    (void)MPROC_SYSCALL(shm_unlink)(name.c_str());
    return {{}, error};
  }
  return {std::move(fd), {}};
}

Result<UniqueFd> shm_attach(const std::string& name) noexcept {
  UniqueFd fd(MPROC_SYSCALL(shm_open)(name.c_str(), O_RDWR | O_CLOEXEC, 0600));
  if (!fd.valid()) return {{}, Error::last("shm_open")};
  return {std::move(fd), {}};
}

Error shm_remove(const std::string& name) noexcept { return shm_remove(name.c_str()); }

Error shm_remove(const char* name) noexcept {
  if (MPROC_SYSCALL(shm_unlink)(name) != 0) return Error::last("shm_unlink");
  return {};
}

Result<Mapping> map_private(std::size_t size) noexcept {
  void* data = MPROC_SYSCALL(mmap)(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) return {{}, Error::last("mmap")};
  return {Mapping(static_cast<std::byte*>(data), size), {}};
}

std::size_t page_size() noexcept { return static_cast<std::size_t>(MPROC_SYSCALL(sysconf)(_SC_PAGESIZE)); }

}  // namespace mproc::os
