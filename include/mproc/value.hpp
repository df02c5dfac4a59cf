// mproc/value.hpp
//
// RawValue<T> and Value<T>: Python's multiprocessing RawValue and Value,
// one trivially copyable value in shared memory that every process holding
// a handle sees. Value adds a lock (a new RLock unless one is given) that
// value() and set_value() take, as Python's synchronized wrapper does.
//
// Example (seed 003's counter):
//
//   mproc::Value<int> counter(0);
//   // in each of several processes:
//   for (int i = 0; i < 100000; ++i) {
//     std::scoped_lock hold(counter);  // Python's `with counter:`
//     counter.set_value(counter.value() + 1);
//   }
//
// Without the scoped lock, each call still takes the lock, but another
// process can change the value between value() and set_value(): as in
// Python, increments are lost.

#pragma once

#include <chrono>
#include <mutex>

#include "mproc/array.hpp"
#include "mproc/codec.hpp"
#include "mproc/lock.hpp"

namespace mproc {

// RawValue
//
// One value in shared memory, without a lock.
template <class T>
class RawValue {
 public:
  // A new value, `initial` (zero by default).
  RawValue() : RawValue(T{}) {}
  explicit RawValue(T initial) : cell_(1) { cell_.data()[0] = initial; }

  T value() const { return *cell_.data(); }
  void set_value(const T& value) const { *cell_.data() = value; }

  // The value itself, in this process's mapping.
  T& operator*() const noexcept { return *cell_.data(); }
  T* operator->() const noexcept { return cell_.data(); }

  bool operator==(const RawValue& other) const noexcept { return cell_ == other.cell_; }

  void save(Encoder& encoder) const { cell_.save(encoder); }
  void load(Decoder& decoder) {
    RawArray<T> cell;
    cell.load(decoder);
    if (cell.size() != 1) throw DecodeError("mproc: a shared value reference names an array");
    cell_ = std::move(cell);
  }

 private:
  RawArray<T> cell_;
};

// Value
//
// A RawValue with a lock `L` (RLock by default, or Lock). The Value is
// itself lockable, as Python's `with value:`.
template <class T, class L = RLock>
class Value : public detail::Lockable<Value<T, L>> {
  static_assert(detail::is_value_lock<L>, "mproc: Value<T, L> needs L to be mproc::Lock or mproc::RLock");

 public:
  // A new value, `initial` (zero by default), guarded by `lock` (a new one
  // by default).
  Value() = default;
  explicit Value(T initial, L lock = L()) : lock_(std::move(lock)), obj_(initial) {}

  // Value::value(), Value::set_value()
  //
  // Read and write the value, each under the lock. Throws OwnerDiedError if
  // the lock's holder died holding it.
  T value() const {
    std::scoped_lock hold(lock_);
    return obj_.value();
  }
  void set_value(const T& value) {
    std::scoped_lock hold(lock_);
    obj_.set_value(value);
  }

  // Python's acquire() and release() of the lock; with the Lockable names
  // (lock, unlock, try_lock, ...) from the base class.
  bool acquire(bool block = true) { return lock_.acquire(block); }
  template <class Rep, class Period>
  bool acquire(bool block, std::chrono::duration<Rep, Period> timeout) {
    return lock_.acquire(block, timeout);
  }
  void release() { lock_.release(); }

  // The lock, and the unsynchronized value under it.
  L get_lock() const { return lock_; }
  RawValue<T> get_obj() const { return obj_; }

  bool operator==(const Value& other) const noexcept { return obj_ == other.obj_; }

  void save(Encoder& encoder) const {
    lock_.save(encoder);
    obj_.save(encoder);
  }
  void load(Decoder& decoder) {
    lock_.load(decoder);
    obj_.load(decoder);
  }

 private:
  // mutable: reading the value takes the lock, which changes it.
  mutable L lock_;
  RawValue<T> obj_;
};

}  // namespace mproc
