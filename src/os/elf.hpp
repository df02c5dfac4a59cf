// Reading an ELF file's symbol tables, to check that an address received as
// a function reference is really the start of a function.

#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "os/error.hpp"

namespace mproc::os {

struct FunctionSymbols {
  // Link-time addresses (add the module's load bias) where functions start,
  // from .symtab and .dynsym, sorted and unique.
  std::vector<std::uint64_t> starts;
  // Whether the file has a full symbol table (.symtab); a stripped file has
  // only the exported functions of .dynsym.
  bool has_symtab = false;
  // The file's GNU build id, to check it is the module that is mapped.
  std::vector<std::byte> build_id;
};

// Reads the function symbols of the ELF file at `path`. Every offset and
// size in the file is checked against the file's size; a malformed file is
// EINVAL (ENOEXEC if it is not a 64-bit little-endian ELF file).
Result<FunctionSymbols> read_function_symbols(const char* path);

}  // namespace mproc::os
