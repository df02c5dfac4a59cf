// mproc/array.hpp
//
// RawArray<T> and Array<T>: Python's multiprocessing RawArray and Array, a
// fixed number of trivially copyable values in shared memory that every
// process holding a handle sees. Array adds a lock (a new RLock unless one
// is given) that each element access takes, as Python's synchronized
// wrapper does; RawArray has none.
//
// Example:
//
//   mproc::Array<int> numbers{0, 1, 2, 3, 4};
//   mproc::Process p([numbers]() mutable {
//     for (std::size_t i = 0; i < numbers.size(); ++i) numbers[i] += 1;
//   });
//   p.start();
//   p.join();
//   numbers.to_vector();  // {1, 2, 3, 4, 5}
//
// Both are handles: copies, a forked child's copies and decoded copies are
// the same memory. Indexing out of range is std::out_of_range.
// Array<char> and RawArray<char> also have Python's c_char `value` (the
// bytes before the first NUL) and `raw` (all bytes).

#pragma once

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <mutex>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "mproc/codec.hpp"
#include "mproc/detail/shared_cells.hpp"
#include "mproc/lock.hpp"

namespace mproc {

namespace detail {

template <class T>
inline constexpr bool shareable_cell = std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> &&
                                       alignof(T) <= 64 && !std::is_const_v<T>;

template <class L>
inline constexpr bool is_value_lock = std::is_same_v<L, Lock> || std::is_same_v<L, RLock>;

// What Value and Array share: the raw object `Obj` and the lock `L` that
// guards it, Python's acquire()/release() (and through Lockable the std
// names), get_lock(), get_obj(), and the encoding of both.
template <class Derived, class L, class Obj>
class Synchronized : public Lockable<Derived> {
  static_assert(is_value_lock<L>, "mproc: Value and Array need L to be mproc::Lock or mproc::RLock");

 public:
  // Python's acquire() and release() of the lock; with the Lockable names
  // (lock, unlock, try_lock, ...).
  bool acquire(bool block = true) { return lock_.acquire(block); }
  template <class Rep, class Period>
  bool acquire(bool block, std::chrono::duration<Rep, Period> timeout) {
    return lock_.acquire(block, timeout);
  }
  void release() { lock_.release(); }

  // The lock, and the unsynchronized object under it (to use holding the
  // lock: no lock per access).
  L get_lock() const { return lock_; }
  Obj get_obj() const { return obj_; }

  // Two handles to the same memory compare equal.
  bool operator==(const Synchronized& other) const noexcept { return obj_ == other.obj_; }

  void save(Encoder& encoder) const {
    lock_.save(encoder);
    obj_.save(encoder);
  }
  void load(Decoder& decoder) {
    lock_.load(decoder);
    obj_.load(decoder);
  }

 protected:
  Synchronized() = default;
  Synchronized(L lock, Obj obj) : lock_(std::move(lock)), obj_(std::move(obj)) {}

  // f(obj) with the lock held.
  template <class F>
  decltype(auto) locked(F f) const {
    std::scoped_lock hold(lock_);
    return f(obj_);
  }

  // mutable: reading takes the lock, which changes it.
  mutable L lock_;
  Obj obj_;
};

}  // namespace detail

// RawArray
//
// A fixed-size array in shared memory, without a lock.
template <class T>
class RawArray {
  static_assert(detail::shareable_cell<T>,
                "mproc: RawArray<T> needs a trivially copyable, non-pointer T aligned to at most 64 bytes");

 public:
  using value_type = T;
  using iterator = T*;

  // An empty array.
  RawArray() = default;

  // `size` zero-filled elements (Python's RawArray(typecode, size)).
  explicit RawArray(std::size_t size) : cells_(detail::allocate_cells(sizeof(T), size)) {}

  // The given elements (Python's RawArray(typecode, sequence)).
  RawArray(std::initializer_list<T> values) : RawArray(values.size()) { std::ranges::copy(values, begin()); }
  template <std::ranges::sized_range R>
    requires std::convertible_to<std::ranges::range_value_t<R>, T>
  explicit RawArray(const R& values) : RawArray(static_cast<std::size_t>(std::ranges::size(values))) {
    std::ranges::copy(values, begin());
  }

  std::size_t size() const noexcept { return cells_.count; }
  bool empty() const noexcept { return cells_.count == 0; }

  // The elements, in this process's mapping. No lock is taken.
  T* data() const noexcept { return static_cast<T*>(cells_.data); }
  T* begin() const noexcept { return data(); }
  T* end() const noexcept { return data() + size(); }
  std::span<T> span() const noexcept { return {data(), size()}; }

  // RawArray::operator[]
  //
  // The element at `index`; std::out_of_range past the end.
  T& operator[](std::size_t index) const {
    if (index >= size()) detail::throw_index_out_of_range("RawArray", index, size());
    return data()[index];
  }

  // RawArray::slice()
  //
  // Python's array[start:stop], as a view of the shared elements: `stop` is
  // clamped to the size and `start` to `stop`, so a slice past the end or
  // backwards is empty, as in Python.
  std::span<T> slice(std::size_t start, std::size_t stop) const {
    stop = std::min(stop, size());
    start = std::min(start, stop);
    return span().subspan(start, stop - start);
  }

  // A copy of the elements.
  std::vector<T> to_vector() const { return std::vector<T>(begin(), end()); }

  // RawArray<char>::value(), set_value(), raw(), set_raw()
  //
  // Python's c_char array attributes: value() is the bytes before the first
  // NUL; set_value() writes the bytes and a NUL after them if there is
  // room; raw() is every byte; set_raw() writes the bytes only. Setting
  // more bytes than size() is std::length_error("byte string too long").
  std::string value() const
    requires std::is_same_v<T, char>
  {
    return detail::c_string_value(span());
  }
  void set_value(std::string_view bytes) const
    requires std::is_same_v<T, char>
  {
    detail::set_c_string_value(span(), bytes);
  }
  std::string raw() const
    requires std::is_same_v<T, char>
  {
    return std::string(begin(), end());
  }
  void set_raw(std::string_view bytes) const
    requires std::is_same_v<T, char>
  {
    detail::set_c_string_raw(span(), bytes);
  }

  // Two handles to the same memory compare equal.
  bool operator==(const RawArray& other) const noexcept { return cells_.block == other.cells_.block; }

  void save(Encoder& encoder) const { detail::save_cells(encoder, cells_); }
  void load(Decoder& decoder) { cells_ = detail::load_cells(decoder, sizeof(T)); }

 private:
  detail::Cells cells_;
};

// Array
//
// A RawArray with a lock `L` (RLock by default, or Lock) that element
// access, value() and raw() take. The Array is itself lockable, as Python's
// `with array:`, so several accesses can be made under one hold:
//
//   std::scoped_lock hold(array);  // array.get_lock() held
//   array[0] = array[0] + 1;       // an RLock may be taken again
//
// With a Lock instead, element access while holding it waits for ever, as
// in Python; use get_obj() under the lock.
template <class T, class L = RLock>
class Array : public detail::Synchronized<Array<T, L>, L, RawArray<T>> {
  using Base = detail::Synchronized<Array<T, L>, L, RawArray<T>>;
  using Base::obj_;

 public:
  using value_type = T;

  // Element access through operator[]: each read and each write takes the
  // lock; a compound assignment (+=, -=, ...) takes it once for the read
  // and the write together, so unlike Python's `a[i] += 1` it is atomic.
  // An Element holds its own handle to the array, so it stays valid after
  // the Array it came from is gone; `auto e = a[i]` is a live view of the
  // element (as std::vector<bool>'s reference), not a copy of its value.
  class Element {
   public:
    operator T() const { return array_.get(index_); }  // NOLINT: reads as the element
    Element& operator=(const T& value) {
      array_.set(index_, value);
      return *this;
    }
    Element& operator=(const Element& other) { return *this = static_cast<T>(other); }
    Element& operator+=(const T& v) { return update([&](T& x) { x += v; }); }
    Element& operator-=(const T& v) { return update([&](T& x) { x -= v; }); }
    Element& operator*=(const T& v) { return update([&](T& x) { x *= v; }); }
    Element& operator/=(const T& v) { return update([&](T& x) { x /= v; }); }

   private:
    friend class Array;
    Element(const Array& array, std::size_t index) : array_(array), index_(index) {}
    template <class F>
    Element& update(F f) {
      array_.locked([&](const RawArray<T>& cells) { f(cells[index_]); });
      return *this;
    }
    Array array_;
    std::size_t index_;
  };

  // An empty array, with a new lock.
  Array() = default;

  // `size` zero-filled elements, guarded by `lock` (a new one by default).
  explicit Array(std::size_t size, L lock = L()) : Base(std::move(lock), RawArray<T>(size)) {}

  // The given elements.
  Array(std::initializer_list<T> values, L lock = L()) : Base(std::move(lock), RawArray<T>(values)) {}
  template <std::ranges::sized_range R>
    requires std::convertible_to<std::ranges::range_value_t<R>, T>
  explicit Array(const R& values, L lock = L()) : Base(std::move(lock), RawArray<T>(values)) {}

  // acquire(), release(), the Lockable names, get_lock() and get_obj() (the
  // RawArray: spans, iteration and references, to use holding the lock)
  // come from detail::Synchronized.

  std::size_t size() const noexcept { return obj_.size(); }
  bool empty() const noexcept { return obj_.empty(); }

  // Array::operator[]
  //
  // The element at `index`, read or written under the lock (see Element);
  // std::out_of_range past the end.
  Element operator[](std::size_t index) {
    check_index(index);
    return Element(*this, index);
  }
  const T operator[](std::size_t index) const { return get(index); }

  // A copy of the elements, or of Python's array[start:stop], taken under
  // one hold of the lock.
  std::vector<T> to_vector() const {
    return this->locked([](const RawArray<T>& cells) { return cells.to_vector(); });
  }
  std::vector<T> slice(std::size_t start, std::size_t stop) const {
    return this->locked([&](const RawArray<T>& cells) {
      auto view = cells.slice(start, stop);
      return std::vector<T>(view.begin(), view.end());
    });
  }

  // Writes `values` from `start` on, under one hold of the lock;
  // std::out_of_range (writing nothing) if they do not fit.
  void assign(std::size_t start, std::span<const T> values) {
    if (start > size() || values.size() > size() - start) {
      detail::throw_index_out_of_range("Array assignment end", start + values.size(), size());
    }
    this->locked([&](const RawArray<T>& cells) { std::ranges::copy(values, cells.begin() + start); });
  }

  // Python's c_char array value and raw, under the lock (see RawArray).
  std::string value() const
    requires std::is_same_v<T, char>
  {
    return this->locked([](const RawArray<char>& cells) { return cells.value(); });
  }
  void set_value(std::string_view bytes)
    requires std::is_same_v<T, char>
  {
    this->locked([&](const RawArray<char>& cells) { cells.set_value(bytes); });
  }
  std::string raw() const
    requires std::is_same_v<T, char>
  {
    return this->locked([](const RawArray<char>& cells) { return cells.raw(); });
  }
  void set_raw(std::string_view bytes)
    requires std::is_same_v<T, char>
  {
    this->locked([&](const RawArray<char>& cells) { cells.set_raw(bytes); });
  }

 private:
  void check_index(std::size_t index) const {
    if (index >= size()) detail::throw_index_out_of_range("Array", index, size());
  }
  T get(std::size_t index) const {
    check_index(index);
    return this->locked([&](const RawArray<T>& cells) { return cells.data()[index]; });
  }
  void set(std::size_t index, const T& value) const {
    check_index(index);
    this->locked([&](const RawArray<T>& cells) { cells.data()[index] = value; });
  }
};

}  // namespace mproc
