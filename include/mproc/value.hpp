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
class Value : public detail::Synchronized<Value<T, L>, L, RawValue<T>> {
  using Base = detail::Synchronized<Value<T, L>, L, RawValue<T>>;

 public:
  // A new value, `initial` (zero by default), guarded by `lock` (a new one
  // by default).
  Value() = default;
  explicit Value(T initial, L lock = L()) : Base(std::move(lock), RawValue<T>(initial)) {}

  // Value::value(), Value::set_value()
  //
  // Read and write the value, each under the lock. Throws OwnerDiedError if
  // the lock's holder died holding it.
  T value() const {
    return this->locked([](const RawValue<T>& cell) { return cell.value(); });
  }
  void set_value(const T& value) {
    this->locked([&](const RawValue<T>& cell) { cell.set_value(value); });
  }

  // acquire(), release(), the Lockable names, get_lock() and get_obj() (the
  // RawValue under the lock) come from detail::Synchronized.
};

}  // namespace mproc
