// mproc/remote_exception.hpp
//
// Exceptions that cross process boundaries: a task's exception, caught in
// the worker that ran it, travels as data (its type's name, its what() text,
// the worker's name) and is thrown again in the process that asked for the
// result. Decoding one never runs code the sender chose: the receiver picks
// what to throw from its own table of known types.
//
//   // in the worker
//   mproc::RemoteException error = mproc::capture_exception(std::current_exception(), "ForkPoolWorker-1");
//   // ... sent over a Connection or a Queue ...
//   // in the parent
//   mproc::rethrow_remote(error);  // throws std::invalid_argument("bad x"), say
//
// Rethrown as themselves: the standard exception types (std::logic_error,
// std::invalid_argument, std::domain_error, std::length_error,
// std::out_of_range, std::runtime_error, std::range_error,
// std::overflow_error, std::underflow_error, std::system_error with its
// error code, std::bad_alloc, std::exception), mproc's own error types (see
// errors.hpp), and user types registered with register_exception<E>() in
// both processes. Anything else becomes RemoteError, carrying the type name,
// the text and the process name.

#pragma once

#include <exception>
#include <string>
#include <type_traits>

#include "mproc/errors.hpp"

namespace mproc {

// RemoteException
//
// An exception as data: encodable, so it travels through the codec.
struct RemoteException {
  std::string type;     // demangled name of the exception's dynamic type
  std::string message;  // what(), or a description for a non-std exception
  std::string process;  // the name of the process where it was caught
  int error_code = 0;   // for std::system_error and its subclasses
  std::string error_category;

  bool operator==(const RemoteException&) const = default;
};

// capture_exception()
//
// Describes `error` (which must hold an exception) as caught in `process`.
RemoteException capture_exception(std::exception_ptr error, std::string process);

// rethrow_remote()
//
// Throws the exception `error` describes: as its own type when this process
// knows it (see above), as RemoteError otherwise.
[[noreturn]] void rethrow_remote(const RemoteException& error);

namespace detail {
using ExceptionThrower = void (*)(const RemoteException&);
void register_exception_thrower(std::string type, ExceptionThrower thrower);
std::string exception_type_name(const std::type_info& type);
}  // namespace detail

// register_exception<E>()
//
// Makes rethrow_remote() throw an E, built from the original's what() text,
// for an exception whose dynamic type was E. E must be constructible from a
// std::string. Register it in the sending and receiving processes (before
// forking, or at static initialization: `static const bool registered =
// mproc::register_exception<MyError>();`). Returns true.
template <class E>
bool register_exception() {
  static_assert(std::is_base_of_v<std::exception, E>, "register_exception<E>: E must derive from std::exception");
  static_assert(std::is_constructible_v<E, std::string>,
                "register_exception<E>: E must be constructible from a std::string (its what() text)");
  detail::register_exception_thrower(detail::exception_type_name(typeid(E)),
                                     [](const RemoteException& error) { throw E(error.message); });
  return true;
}

}  // namespace mproc
