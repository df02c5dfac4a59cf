// SharedMemory: a named segment, its mapping, and its registration with the
// tracker (tracker.cpp).

#include "mproc/shared_memory.hpp"

#include <cstdint>
#include <limits>
#include <stdexcept>

#include "common/raise.hpp"
#include "mproc/errors.hpp"
#include "os/memory.hpp"
#include "os/random.hpp"
#include "runtime/runtime.hpp"
#include "shared_memory/tracker.hpp"

namespace mproc {
namespace detail {

struct SharedMemoryState {
  std::string name;  // without the leading slash
  std::size_t size = 0;
  bool track = false;
  bool generated = false;  // the name came from generated_name()
  os::Mapping mapping;  // empty once closed
  bool open = true;
};

namespace {

std::string path_of(std::string_view name) {
  std::string path;
  path.reserve(name.size() + 1);
  path += '/';
  path += name;
  return path;
}

void check_name(std::string_view name) {
  auto bad = [&](const char* why) {
    throw std::invalid_argument("mproc: SharedMemory name '" + std::string(name) + "' " + why);
  };
  if (name.empty()) bad("is empty");
  if (name.size() > tracker::kMaxNameLength) bad("is longer than 255 characters");
  if (name.find('/') != std::string_view::npos) bad("contains '/'");
  if (name.find('\0') != std::string_view::npos) bad("contains a NUL character");
  if (name == "." || name == "..") bad("is not a file name");
}

// 64 bits that no other thread or process (nor this one before) draws: a
// secret seed from the kernel, drawn again in each thread and each process
// (a forked child must not repeat its parent's names), stirred with a
// counter. One getrandom per thread instead of one per segment: system
// calls are the cost here. Per thread rather than behind a mutex: a mutex
// another thread held at fork() would stay locked in the child.
std::uint64_t name_bits() {
  thread_local int seeded_in = 0;
  thread_local std::uint64_t seed = 0, counter = 0;
  int pid = Runtime::get().pid();
  if (seeded_in != pid) {
    seed = unwrap(os::random_u64(), "SharedMemory name");
    seeded_in = pid;
  }
  // splitmix64's finalizer: consecutive counters give unrelated outputs.
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * ++counter;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string generated_name() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t bits = name_bits();
  std::string name = "psm_";
  for (int shift = 60; shift >= 0; shift -= 4) name += kHex[(bits >> shift) & 0xf];
  return name;
}

}  // namespace
}  // namespace detail

SharedMemory SharedMemory::create(std::size_t size, bool track) {
  // 64 random bits: a collision is a freak, but retrying costs nothing.
  for (int attempt = 0;; ++attempt) {
    try {
      SharedMemory shm = open(detail::generated_name(), size, true, track);
      shm.state_->generated = true;
      return shm;
    } catch (const FileExistsError&) {
      if (attempt == 8) throw;
    }
  }
}

SharedMemory SharedMemory::create(std::string_view name, std::size_t size, bool track) {
  detail::check_name(name);
  return open(name, size, true, track);
}

SharedMemory SharedMemory::attach(std::string_view name, bool track) {
  detail::check_name(name);
  return open(name, 0, false, track);
}

SharedMemory SharedMemory::open(std::string_view name, std::size_t size, bool create, bool track) {
  if (create && (size == 0 || size > static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()))) {
    throw std::invalid_argument("mproc: SharedMemory size must be positive (got " +
                                (size == 0 ? std::string("0") : std::to_string(static_cast<std::ptrdiff_t>(size))) +
                                ")");
  }
  auto state = std::make_shared<detail::SharedMemoryState>();
  state->name = std::string(name);
  state->track = track;
  std::string path = detail::path_of(name);
  auto fd = create ? os::shm_create(path, size) : os::shm_attach(path);
  if (!fd.ok()) {
    if (fd.error.code == std::errc::file_exists)
      throw FileExistsError("mproc: SharedMemory '" + state->name + "' exists already");
    if (fd.error.code == std::errc::no_such_file_or_directory)
      throw FileNotFoundError("mproc: no SharedMemory named '" + state->name + "'");
    detail::raise(fd.error, "SharedMemory '" + state->name + "'");
  }
  try {
    state->size = create ? size : detail::unwrap(os::file_size(fd.value.get()), "SharedMemory '" + state->name + "'");
    state->mapping = detail::unwrap(os::map_shared(fd.value.get(), state->size), "SharedMemory '" + state->name + "'");
    if (track) detail::tracker::register_segment(state->name, create);
  } catch (...) {
    if (create) (void)os::shm_remove(path);
    throw;
  }
  return SharedMemory(std::move(state));
}

const std::string& SharedMemory::name() const noexcept {
  static const std::string none;
  return state_ ? state_->name : none;
}

std::size_t SharedMemory::size() const noexcept { return state_ ? state_->size : 0; }

bool SharedMemory::track() const noexcept { return state_ && state_->track; }

std::span<std::byte> SharedMemory::buf() const {
  if (!state_) throw UsageError("mproc: SharedMemory::buf() on an empty handle");
  if (!state_->open)
    throw UsageError("mproc: SharedMemory '" + state_->name + "' is closed");
  return state_->mapping.bytes();
}

void SharedMemory::close() noexcept {
  if (!state_ || !state_->open) return;
  // A span another copy took may outlive close(). Unmapped, its address
  // could be handed to the next mapping, and a write through it would land
  // there silently; an inaccessible reservation makes it fault instead. The
  // reservation goes with the last copy (the mapping's destructor). Without
  // other copies, only this handle's own spans are left, which buf() says
  // not to keep: plain unmapping then saves the reservation's two calls.
  bool other_copies = state_.use_count() > 1;
  if (!other_copies || os::make_inaccessible(state_->mapping)) state_->mapping.reset();
  state_->open = false;
}

bool SharedMemory::closed() const noexcept { return !state_ || !state_->open; }

void SharedMemory::unlink() {
  if (!state_) throw UsageError("mproc: SharedMemory::unlink() on an empty handle");
  os::Error error = os::shm_remove(detail::path_of(state_->name));
  if (error.code == std::errc::no_such_file_or_directory)
    throw FileNotFoundError("mproc: no SharedMemory named '" + state_->name + "' to unlink");
  detail::check(error, "SharedMemory '" + state_->name + "'");
  if (state_->track) detail::tracker::unregister_segment(state_->name, state_->generated);
}

void SharedMemory::save(Encoder& encoder) const {
  if (!state_) throw UsageError("mproc: cannot encode an empty SharedMemory handle");
  encoder(state_->name, state_->track);
}

void SharedMemory::load(Decoder& decoder) {
  std::string name;
  bool track = true;
  decoder(name, track);
  if (name.empty() || name.size() > detail::tracker::kMaxNameLength || name.find('/') != std::string::npos)
    throw DecodeError("mproc: a SharedMemory's name in a message is not a segment name");
  *this = attach(name, track);
}

}  // namespace mproc
