// mproc/shared_memory.hpp
//
// SharedMemory: Python's multiprocessing.shared_memory.SharedMemory, a named
// POSIX shared memory segment (in /dev/shm) that unrelated processes attach
// to by name. A tracker process unlinks the segments of processes that die
// without unlinking them, so a crash leaks nothing (docs/shared_memory.md).
//
// SharedMemory is a handle, like mproc's other IPC objects: copies share one
// mapping, and close() on any copy closes it for all of them, as with one
// Python object referenced twice. The mapping goes away with the last copy.
// Neither close() nor the destructor removes the segment: unlink() does,
// once, in whichever process is done with it last (as in Python).
//
// Example:
//
//   auto shm = mproc::SharedMemory::create(1 << 20);  // name "psm_..."
//   std::ranges::fill(shm.buf(), std::byte{7});
//   mproc::Process p([name = shm.name()] {
//     auto other = mproc::SharedMemory::attach(name);
//     assert(other.buf()[0] == std::byte{7});
//   });
//   p.start();
//   p.join();
//   shm.close();
//   shm.unlink();

#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "mproc/codec.hpp"

namespace mproc {

namespace detail {
struct SharedMemoryState;
}

class SharedMemory {
 public:
  // SharedMemory::create()
  //
  // Creates a segment of `size` bytes, zero-filled, named `name` (no slash,
  // at most 255 characters) or, without a name, "psm_" and 16 random hex
  // digits. Throws FileExistsError if the name is taken, std::invalid_argument
  // for a size of 0 (or beyond PTRDIFF_MAX: a negative number converted) or a
  // bad name, std::system_error if the system refuses. With `track` (the
  // default) the tracker unlinks the segment if this process dies without
  // unlinking it; see docs/shared_memory.md.
  static SharedMemory create(std::size_t size, bool track = true);
  static SharedMemory create(std::string_view name, std::size_t size, bool track = true);

  // SharedMemory::attach()
  //
  // Maps the existing segment `name`, all of it. Throws FileNotFoundError if
  // there is none. With `track` (the default, as Python 3.13) this process
  // counts as one of its holders for the tracker.
  static SharedMemory attach(std::string_view name, bool track = true);

  // An empty handle, attached to nothing: what a decoder fills in.
  SharedMemory() = default;

  // SharedMemory::name()
  //
  // The segment's name, without the leading slash (as Python's `name`).
  const std::string& name() const noexcept;

  // SharedMemory::size()
  //
  // The size in bytes: what create() asked for, or the segment's size when
  // attached. Still known after close().
  std::size_t size() const noexcept;

  // SharedMemory::buf()
  //
  // The mapped bytes. Throws UsageError once closed. Do not keep spans past
  // close() (Python refuses to close while a memoryview exists): using one
  // afterwards dies with SIGSEGV, see close().
  std::span<std::byte> buf() const;

  // SharedMemory::track()
  //
  // Whether this handle registered the segment with the tracker.
  bool track() const noexcept;

  // SharedMemory::close()
  //
  // Unmaps the segment, for every copy of this handle. The segment itself
  // stays. Closing again does nothing. While other copies exist the address
  // range stays reserved, inaccessible, until the last copy goes: a span
  // one of them kept then faults rather than writing into whatever would be
  // mapped there next.
  void close() noexcept;
  bool closed() const noexcept;

  // SharedMemory::unlink()
  //
  // Removes the segment's name: no one can attach any more, and the memory
  // is freed once every process has unmapped it. Tells the tracker (if
  // tracked), so it will not unlink it again. Throws FileNotFoundError if the
  // segment is gone already. Works after close().
  void unlink();

  // Handles compare equal when they are copies of one another.
  bool operator==(const SharedMemory& other) const noexcept { return state_ == other.state_; }

  // Encoded as its name (and whether it is tracked): the receiver attaches,
  // as Python pickles a SharedMemory by name. Throws FileNotFoundError when
  // decoded after the segment was unlinked.
  void save(Encoder& encoder) const;
  void load(Decoder& decoder);

 private:
  explicit SharedMemory(std::shared_ptr<detail::SharedMemoryState> state) : state_(std::move(state)) {}
  static SharedMemory open(std::string_view name, std::size_t size, bool create, bool track);

  std::shared_ptr<detail::SharedMemoryState> state_;
};

}  // namespace mproc
