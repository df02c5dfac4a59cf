// Readable names of C++ types, for messages about exceptions.

#pragma once

#include <string>

namespace mproc::detail {

// The demangled form of a mangled type name (typeid(x).name()), or the name
// as it is if it cannot be demangled.
std::string demangle(const char* mangled);

}  // namespace mproc::detail
