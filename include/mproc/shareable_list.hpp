// mproc/shareable_list.hpp
//
// ShareableList: Python's multiprocessing.shared_memory.ShareableList, a
// fixed-length list of int64, double, bool, string, bytes or none values,
// stored in a SharedMemory segment that other processes attach to by name.
//
// As in Python, each slot's storage is fixed when the list is created: a
// number, bool or none takes 8 bytes; a string or bytes value takes its
// length rounded up to a multiple of 8 (at least 8). A slot may later hold
// a value of any type that fits that capacity; a longer string is refused
// (std::length_error) and the slot keeps its old value.
//
// Reads and writes are not synchronized: a value read while another
// process writes the same slot may be torn (as in Python); use a Lock when
// that matters. Reads are checked against the slot's capacity, so a torn or
// hostile slot is an error, never a read out of bounds.
//
// A ShareableList is a handle: copies share one mapping (see SharedMemory).
//
// Example:
//
//   mproc::ShareableList list({1, 2.5, "hello", true, nullptr});
//   mproc::Process p([name = list.shm().name()] {
//     mproc::ShareableList mine = mproc::ShareableList::attach(name);
//     mine.set(0, 42);
//   });
//   p.start();
//   p.join();
//   std::get<std::int64_t>(list[0]);  // 42
//   list.shm().close();
//   list.shm().unlink();

#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mproc/codec.hpp"
#include "mproc/shared_memory.hpp"

namespace mproc {

// Python's bytes.
using Bytes = std::vector<std::byte>;

// ShareableValue
//
// One slot's value: none (std::monostate), int64, double, bool, string or
// bytes. A std::variant (std::get, std::visit and holds_alternative work),
// constructible from any of them, from other integers, from string literals
// and from nullptr (none).
struct ShareableValue : std::variant<std::monostate, std::int64_t, double, bool, std::string, Bytes> {
  using Base = std::variant<std::monostate, std::int64_t, double, bool, std::string, Bytes>;
  using Base::Base;
  using Base::operator=;

  ShareableValue() = default;
  ShareableValue(std::nullptr_t) {}
  ShareableValue(bool value) : Base(value) {}
  ShareableValue(int value) : Base(std::int64_t{value}) {}
  ShareableValue(long value) : Base(std::int64_t{value}) {}
  ShareableValue(long long value) : Base(std::int64_t{value}) {}
  ShareableValue(unsigned value) : Base(std::int64_t{value}) {}
  ShareableValue(double value) : Base(value) {}
  ShareableValue(const char* value) : Base(std::string(value)) {}
  ShareableValue(std::string_view value) : Base(std::string(value)) {}
  ShareableValue(std::string value) : Base(std::move(value)) {}
  ShareableValue(Bytes value) : Base(std::move(value)) {}

  bool is_none() const noexcept { return index() == 0; }
  const Base& variant() const noexcept { return *this; }

  // Equal when of the same type and value (1 and 1.0 differ, as do 1 and
  // true, unlike Python's ==).
  friend bool operator==(const ShareableValue& a, const ShareableValue& b) {
    return a.variant() == b.variant();
  }
};

class ShareableList {
 public:
  // ShareableList::ShareableList()
  //
  // Creates a list holding `values`, in a new segment named `name` (or a
  // generated "psm_..." name), tracked as SharedMemory::create does. Throws
  // what SharedMemory::create throws, and std::length_error for a string or
  // bytes value longer than a slot can hold (2^31 bytes).
  ShareableList(std::initializer_list<ShareableValue> values, std::optional<std::string> name = std::nullopt);
  explicit ShareableList(std::span<const ShareableValue> values, std::optional<std::string> name = std::nullopt);

  // ShareableList::attach()
  //
  // Attaches to the list in segment `name`. Throws FileNotFoundError if there
  // is no such segment, DecodeError if the segment does not hold a valid
  // list (another kind of segment, or one cut short).
  static ShareableList attach(std::string_view name, bool track = true);

  // An empty handle, attached to nothing: what a decoder fills in.
  ShareableList() = default;

  // ShareableList::size()
  //
  // The number of slots (Python's len()).
  std::size_t size() const;

  // ShareableList::get(), operator[]
  //
  // The value in slot `index`. Throws std::out_of_range for an index past
  // the end, DecodeError if the slot's contents are not a valid value.
  ShareableValue get(std::size_t index) const;
  ShareableValue operator[](std::size_t index) const { return get(index); }

  // ShareableList::set()
  //
  // Stores `value` in slot `index`. Throws std::out_of_range for an index
  // past the end, std::length_error (leaving the slot unchanged) for a
  // string or bytes value longer than the slot's capacity.
  void set(std::size_t index, const ShareableValue& value);

  // ShareableList::capacity()
  //
  // The bytes slot `index` can hold, fixed at creation.
  std::size_t capacity(std::size_t index) const;

  // ShareableList::count(), index()
  //
  // How many slots hold `value`; the first slot holding it (throws
  // std::invalid_argument if none does, as Python's ValueError).
  std::size_t count(const ShareableValue& value) const;
  std::size_t index(const ShareableValue& value) const;

  // ShareableList::format()
  //
  // A description of the slots in struct-module style: "q" int64, "d"
  // double, "?" bool, "x" none, "<capacity>s" string, "<capacity>p" bytes.
  // Informational: the layout is mproc's own, not Python's.
  std::string format() const;

  // ShareableList::shm()
  //
  // The segment holding the list: for name(), close() and unlink(). A copy
  // of the handle, so closing it closes the list's mapping too.
  SharedMemory shm() const noexcept { return shm_; }

  bool operator==(const ShareableList& other) const noexcept { return shm_ == other.shm_; }

  // Encoded as its segment's name: the receiver attaches (and validates).
  void save(Encoder& encoder) const;
  void load(Decoder& decoder);

 private:
  explicit ShareableList(SharedMemory shm);
  void validate();

  SharedMemory shm_;
  std::size_t size_ = 0;
};

}  // namespace mproc
