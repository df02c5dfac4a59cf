// mproc/errors.hpp
//
// The exceptions mproc throws for failures that are not the caller's misuse.
// A failed system call is a std::system_error naming the call; misuse (such
// as starting a process twice) is a std::logic_error subclass.

#pragma once

#include <stdexcept>

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

}  // namespace mproc
