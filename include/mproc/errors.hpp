// mproc/errors.hpp
//
// The exceptions mproc throws for failures that are not the caller's misuse.
// A failed system call is a std::system_error naming the call; misuse (such
// as starting a process twice) is a std::logic_error subclass.

#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace mproc {

// Error
//
// The base of mproc's runtime errors, so one catch clause can take them all.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// DecodeError
//
// A message could not be decoded: it was truncated, claimed more bytes than
// it holds, nested too deeply, held a different type than the one asked for
// (its fingerprint differs) or was otherwise malformed. Nothing is allocated
// beyond what the message's own size justifies before this is thrown.
class DecodeError : public Error {
 public:
  using Error::Error;
};

// EncodeError
//
// A value could not be encoded: it nests deeper than the decoder would
// accept, or a custom-serialized part exceeds 4 GiB.
class EncodeError : public Error {
 public:
  using Error::Error;
};

// NotTransferableError
//
// A function cannot cross the process boundary: it lies outside any ELF
// module with a build id, or a reference received names a module (build id)
// not loaded here or an offset that is not a transferable function of the
// expected signature. Also thrown where a start method cannot carry a target.
class NotTransferableError : public Error {
 public:
  using Error::Error;
};

// UsageError
//
// A call the object's state does not allow: starting a process twice, using
// a closed process or connection, sending on the receive-only end of a
// one-way Pipe. The message says what was wrong. (Python raises ValueError,
// AssertionError or OSError for these.)
class UsageError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// ProcessError
//
// The base of Python's multiprocessing errors (BufferTooShort, and later
// TimeoutError and AuthenticationError), and what a Connection throws for a
// message longer than recv_bytes() accepts.
class ProcessError : public Error {
 public:
  using Error::Error;
};

// BufferTooShort
//
// Connection::recv_bytes_into() was given a buffer too small for the message;
// the whole message is in message(), and the connection stays usable.
class BufferTooShort : public ProcessError {
 public:
  BufferTooShort(const std::string& what, std::vector<std::byte> message)
      : ProcessError(what), message_(std::move(message)) {}
  const std::vector<std::byte>& message() const noexcept { return message_; }

 private:
  std::vector<std::byte> message_;
};

// OwnerDiedError
//
// A process died (killed, or ended without releasing) while it held the
// lock being acquired. The lock has been released for the next acquirer;
// what it protected may be half-updated. Python's locks hang forever here.
class OwnerDiedError : public ProcessError {
 public:
  using ProcessError::ProcessError;
};

// BrokenBarrierError
//
// A Barrier was broken (by a party's timeout, abort(), reset() or a failed
// action) before or while the caller waited on it.
class BrokenBarrierError : public Error {
 public:
  using Error::Error;
};

// Empty
//
// A Queue had no item to give before the call's timeout (or at once, for
// get_nowait()). Python's queue.Empty.
class Empty : public Error {
 public:
  using Error::Error;
};

// Full
//
// A bounded Queue had no room for the item before the call's timeout (or at
// once, for put_nowait()); the item was not put. Python's queue.Full.
class Full : public Error {
 public:
  using Error::Error;
};

// TimeoutError
//
// A result was not ready within the time given (AsyncResult::get(timeout),
// Future::result(timeout)). Python's multiprocessing.TimeoutError, a
// ProcessError.
class TimeoutError : public ProcessError {
 public:
  using ProcessError::ProcessError;
};

// RemoteError
//
// An exception thrown in another process (a pool's worker) whose type this
// process cannot rethrow as itself: neither a standard exception type, nor
// one of mproc's, nor one registered with register_exception<E>(). It
// carries the original's demangled type name, its what() text and the name
// of the process that threw it; what() says all three.
class RemoteError : public ProcessError {
 public:
  RemoteError(std::string type, std::string message, std::string process)
      : ProcessError(type + ": " + message + " (in " + process + ")"),
        type_(std::move(type)),
        message_(std::move(message)),
        process_(std::move(process)) {}
  const std::string& type() const noexcept { return type_; }
  const std::string& message() const noexcept { return message_; }
  const std::string& process() const noexcept { return process_; }

 private:
  std::string type_;
  std::string message_;
  std::string process_;
};

// BrokenProcessPool
//
// A pool or executor can no longer run tasks (a worker's initializer failed,
// for one). concurrent.futures' BrokenProcessPool.
class BrokenProcessPool : public Error {
 public:
  using Error::Error;
};

// WorkerLostError
//
// The worker running a task died before finishing it (killed by a signal,
// or exited); the message names its pid and the signal or exit code. Only
// that task fails: the pool replaces the worker and goes on. It derives
// from BrokenProcessPool so that code written for CPython, where one lost
// worker breaks the whole pool, still catches it.
class WorkerLostError : public BrokenProcessPool {
 public:
  using BrokenProcessPool::BrokenProcessPool;
};

// CancelledError
//
// The task was cancelled before it ran (Future::cancel(), or an executor's
// shutdown(cancel_futures)): concurrent.futures' CancelledError.
class CancelledError : public Error {
 public:
  using Error::Error;
};

// EOFError
//
// The other end of a connection was closed and nothing is left to read (or it
// was closed in the middle of a message).
class EOFError : public Error {
 public:
  using Error::Error;
};

// FileExistsError
//
// A named object (a SharedMemory segment) could not be created because one
// of that name exists. Python's FileExistsError is an OSError; this is a
// std::system_error (code() is std::errc::file_exists), so code that catches
// failed system calls catches it too. The message names the object.
class FileExistsError : public std::system_error {
 public:
  explicit FileExistsError(const std::string& what)
      : std::system_error(std::make_error_code(std::errc::file_exists), what) {}
};

// FileNotFoundError
//
// A named object (a SharedMemory segment) to attach to or unlink does not
// exist. A std::system_error (code() is std::errc::no_such_file_or_directory),
// as FileExistsError.
class FileNotFoundError : public std::system_error {
 public:
  explicit FileNotFoundError(const std::string& what)
      : std::system_error(std::make_error_code(std::errc::no_such_file_or_directory), what) {}
};

}  // namespace mproc
