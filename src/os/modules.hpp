// The ELF modules (the executable and its shared libraries) mapped into this
// process, as the dynamic loader reports them. Transferable functions name
// code by (module build id, offset), so both ends must agree on modules.

#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mproc::os {

struct Segment {
  std::uintptr_t start = 0;  // absolute address of the first byte
  std::uintptr_t end = 0;    // one past the last byte
  bool readable = false;
  bool writable = false;
  bool executable = false;
};

struct Module {
  std::string path;                // "" for the main executable
  std::uintptr_t base = 0;         // load bias: runtime address = base + link-time address
  std::vector<std::byte> build_id; // the NT_GNU_BUILD_ID note; empty if the module has none
  std::vector<Segment> segments;   // the PT_LOAD segments
  std::vector<Segment> relro;      // the PT_GNU_RELRO ranges: read-only once relocated
};

// Counts of modules loaded and unloaded since the process started; it changes
// exactly when the set of modules does.
struct ModuleGeneration {
  unsigned long long adds = 0;
  unsigned long long subs = 0;
  bool operator==(const ModuleGeneration&) const = default;
};

// Every module mapped now, the main executable first, with its generation.
std::vector<Module> loaded_modules(ModuleGeneration& generation);

// The current generation, without listing the modules.
ModuleGeneration module_generation() noexcept;

}  // namespace mproc::os
