// Function references: (module build id, offset) on the wire, an address here.
//
// Lookups read an immutable snapshot of the loaded modules through one atomic
// pointer: no lock, no system call. The main executable is never unloaded, so
// its entry is always right; for any other module (or a miss) the loader's
// generation is checked and the snapshot rebuilt if it moved (under a mutex,
// reinitialised in a forked child so it never inherits it locked): a dlclose'd
// library is never resolved into, nor named. Old snapshots are kept (not freed) because readers may still
// hold them; there is one per dlopen or dlclose seen, which is few.

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>

#include "mproc/codec.hpp"
#include "mproc/detail/code_ref.hpp"
#include "os/elf.hpp"
#include "os/modules.hpp"
#include "os/process.hpp"

namespace mproc::detail {
namespace {

constexpr std::size_t kMaxBuildIdSize = 64;

thread_local bool g_references_trusted = false;  // see TrustedReferencesScope

// A module's function symbols, read from its file when first needed.
struct SymbolCache {
  std::once_flag once;
  std::optional<os::FunctionSymbols> symbols;  // empty if the file could not be read
};

struct ModuleTable {
  std::vector<os::Module> modules;  // the main executable first
  std::vector<std::unique_ptr<SymbolCache>> symbols;  // one per module
  os::ModuleGeneration generation;
};

std::mutex& refresh_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::atomic<const ModuleTable*> g_current_table{nullptr};

void bracket_fork_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Another thread may hold the mutex at the moment of fork(): the child
    // starts with a fresh one (snapshots are immutable once published, so
    // none can be half-built). Nothing runs in the parent, which would
    // write a page the child shares. Failure happens only out of memory.
    (void)os::at_fork(nullptr, nullptr, [] { new (&refresh_mutex()) std::mutex(); });
  });
}

// Publishes a new snapshot if the loader's generation differs from the
// current one (or there is none yet), and returns the current snapshot.
const ModuleTable& refreshed_table() {
  bracket_fork_once();
  std::lock_guard lock(refresh_mutex());
  static std::vector<std::unique_ptr<const ModuleTable>> all_tables;  // see the file comment
  const ModuleTable* current = g_current_table.load(std::memory_order_acquire);
  if (current == nullptr || current->generation != os::module_generation()) {
    auto table = std::make_unique<ModuleTable>();
    table->modules = os::loaded_modules(table->generation);
    for (std::size_t i = 0; i < table->modules.size(); ++i) {
      table->symbols.push_back(std::make_unique<SymbolCache>());
    }
    current = table.get();
    all_tables.push_back(std::move(table));
    g_current_table.store(current, std::memory_order_release);
  }
  return *current;
}

const ModuleTable& cached_table() {
  const ModuleTable* current = g_current_table.load(std::memory_order_acquire);
  return current != nullptr ? *current : refreshed_table();
}

std::string hex(std::span<const std::byte> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string text;
  for (std::byte b : bytes) {
    text += digits[std::to_integer<unsigned>(b) >> 4];
    text += digits[std::to_integer<unsigned>(b) & 0xf];
  }
  return text;
}

std::string address_text(const void* address) {
  return "0x" + hex(std::span<const std::byte>(reinterpret_cast<const std::byte*>(&address),
                                               sizeof(address)));
}

std::string module_label(const os::Module& module) {
  return module.path.empty() ? std::string("the main executable") : module.path;
}

// The range among `ranges` that holds [start, start + size), if any.
const os::Segment* range_holding(const std::vector<os::Segment>& ranges, std::uintptr_t start,
                                 std::size_t size) {
  for (const os::Segment& r : ranges) {
    if (start >= r.start && start < r.end && size <= r.end - start) return &r;
  }
  return nullptr;
}

const os::Segment* segment_holding(const os::Module& module, std::uintptr_t start, std::size_t size) {
  return range_holding(module.segments, start, size);
}

// Descriptors are constants: they live in readable memory without code that
// nothing can write once the module is relocated. Accepting writable memory
// would let a peer that can place bytes in a global buffer forge one.
bool may_hold_descriptor(const os::Module& module, const os::Segment& segment, std::uintptr_t start,
                         std::size_t size) {
  if (!segment.readable || segment.executable) return false;
  return !segment.writable || range_holding(module.relro, start, size) != nullptr;
}

// The function symbols of `module`, or nullptr if its file cannot be read or
// is not the file that is mapped (another build id).
const os::FunctionSymbols* function_symbols(const ModuleTable& table, const os::Module& module) {
  SymbolCache& cache = *table.symbols[static_cast<std::size_t>(&module - table.modules.data())];
  std::call_once(cache.once, [&] {
    auto read = os::read_function_symbols(module.path.empty() ? os::kSelfExe : module.path.c_str());
    if (read.ok() && read.value.build_id == module.build_id) cache.symbols = std::move(read.value);
  });
  return cache.symbols ? &*cache.symbols : nullptr;
}

// A code reference must name the first instruction of a function in the
// module's symbol tables, so that a message cannot aim a call at any other
// executable byte.
void check_function_start(const ModuleTable& table, const os::Module& module, std::uintptr_t address) {
  const os::FunctionSymbols* symbols = function_symbols(table, module);
  if (symbols == nullptr) {
    throw NotTransferableError("mproc: cannot check a function reference into " + module_label(module) +
                               ": its symbols cannot be read from its file");
  }
  if (std::binary_search(symbols->starts.begin(), symbols->starts.end(), address - module.base)) return;
  if (!symbols->has_symtab) {
    throw NotTransferableError(
        "mproc: a plain function pointer into " + module_label(module) +
        " cannot be checked: the binary is stripped and the function is not exported. Send "
        "mproc::fn<&function> or a lambda instead, which need no symbol table");
  }
  throw NotTransferableError("mproc: address " + address_text(reinterpret_cast<const void*>(address)) +
                             " in " + module_label(module) + " is not the start of a function");
}

struct Location {
  const ModuleTable* table;
  const os::Module* module;
  std::uint64_t offset;
};

const os::Module* module_holding(const ModuleTable& table, std::uintptr_t address) {
  for (const os::Module& module : table.modules) {
    if (segment_holding(module, address, 1) != nullptr) return &module;
  }
  return nullptr;
}

// Finds the module holding `address`. As in resolve_module below, only the
// main executable is taken from a snapshot that may be stale: any other
// module, or none, is looked up again in one of the current generation.
Location locate(const void* address) {
  auto where = reinterpret_cast<std::uintptr_t>(address);
  const ModuleTable* table = &cached_table();
  const os::Module* module = module_holding(*table, where);
  if (module != &table->modules.front()) {
    table = &refreshed_table();
    module = module_holding(*table, where);
  }
  if (module == nullptr) {
    throw NotTransferableError("mproc: the function at " + address_text(address) +
                               " is not in any loaded ELF module");
  }
  if (module->build_id.empty() || module->build_id.size() > kMaxBuildIdSize) {
    throw NotTransferableError("mproc: the function at " + address_text(address) + " is in " +
                               module_label(*module) +
                               ", which has no GNU build id; link it with -Wl,--build-id");
  }
  return {table, module, where - module->base};
}

void write_location(Encoder& encoder, const Location& location) {
  const std::vector<std::byte>& build_id = location.module->build_id;
  encoder.write(static_cast<std::uint8_t>(build_id.size()));
  encoder.write_raw(build_id.data(), build_id.size());
  encoder.write(location.offset);
}

struct Reference {
  std::span<const std::byte> build_id;
  std::uint64_t offset;
};

Reference read_reference(Decoder& decoder) {
  std::uint8_t id_size = 0;
  decoder.read(id_size);
  if (id_size == 0 || id_size > kMaxBuildIdSize) {
    decoder.fail("function reference with a build id of " + std::to_string(id_size) + " bytes");
  }
  Reference reference{decoder.read_view(id_size), 0};
  decoder.read(reference.offset);
  return reference;
}

const os::Module* module_with_build_id(const ModuleTable& table, const Reference& reference) {
  for (const os::Module& module : table.modules) {
    if (std::ranges::equal(module.build_id, reference.build_id)) return &module;
  }
  return nullptr;
}

struct Resolved {
  const ModuleTable* table;
  const os::Module* module;
};

// The module a reference names. The main executable is never unloaded, so a
// snapshot's entry for it is always right; any other module is trusted only
// in a snapshot of the loader's current generation.
Resolved resolve_module(const Reference& reference) {
  const ModuleTable* table = &cached_table();
  const os::Module* module = module_with_build_id(*table, reference);
  if (module != &table->modules.front()) {
    table = &refreshed_table();
    module = module_with_build_id(*table, reference);
  }
  if (module == nullptr) {
    throw NotTransferableError(
        "mproc: a function reference names the module with build id " + hex(reference.build_id) +
        ", which is not loaded in this process: the sender runs a different binary or library "
        "build");
  }
  return {table, module};
}

// The address `reference` names: the start of a function (`code`), or room for
// a descriptor header in constant data.
std::uintptr_t resolve(const Reference& reference, bool code) {
  auto [table, module] = resolve_module(reference);
  std::size_t size = code ? 1 : sizeof(DescriptorHeader);
  std::uintptr_t address = module->base + reference.offset;
  bool overflows = reference.offset > UINTPTR_MAX - module->base;
  const os::Segment* segment = overflows ? nullptr : segment_holding(*module, address, size);
  bool fits = segment != nullptr &&
              (code ? segment->executable : may_hold_descriptor(*module, *segment, address, size));
  if (!fits) {
    throw NotTransferableError("mproc: a function reference names offset " +
                               std::to_string(reference.offset) + " of " + module_label(*module) +
                               ", which is not " + (code ? "code" : "a function descriptor") +
                               " there");
  }
  if (code && !g_references_trusted) check_function_start(*table, *module, address);
  return address;
}

// Copies what may be a descriptor header from a readable segment. The bytes
// may belong to any object (or to AddressSanitizer's red zones around
// globals), so this read is deliberately not instrumented, and made byte by
// byte through volatile so the compiler cannot turn it into a checked memcpy.
__attribute__((no_sanitize("address"))) void copy_candidate(DescriptorHeader* out,
                                                             std::uintptr_t address) {
  auto* from = reinterpret_cast<const volatile unsigned char*>(address);
  auto* to = reinterpret_cast<unsigned char*>(out);
  for (std::size_t i = 0; i < sizeof(DescriptorHeader); ++i) to[i] = from[i];
}

}  // namespace

void write_function_address(Encoder& encoder, const void* address) {
  if (address == nullptr) throw NotTransferableError("mproc: cannot send a null function pointer");
  Location location = locate(address);
  check_function_start(*location.table, *location.module, reinterpret_cast<std::uintptr_t>(address));
  write_location(encoder, location);
}

const void* read_function_address(Decoder& decoder) {
  Reference reference = read_reference(decoder);
  if (!decoder.limits().allow_function_pointers) {
    throw NotTransferableError("mproc: a plain function pointer arrived and DecodeLimits::"
                               "allow_function_pointers is off");
  }
  return reinterpret_cast<const void*>(resolve(reference, true));
}

void warm_function_references() noexcept {
  try {
    const ModuleTable& table = cached_table();
    if (!table.modules.empty()) (void)function_symbols(table, table.modules.front());
  } catch (...) {
    // A child then reads them itself.
  }
}

TrustedReferencesScope::TrustedReferencesScope() noexcept : previous_(g_references_trusted) {
  g_references_trusted = true;
}

TrustedReferencesScope::~TrustedReferencesScope() { g_references_trusted = previous_; }

void write_descriptor(Encoder& encoder, const DescriptorHeader* descriptor) {
  write_location(encoder, locate(descriptor));
}

const DescriptorHeader* read_descriptor(Decoder& decoder, std::uint64_t signature) {
  Reference reference = read_reference(decoder);
  std::uintptr_t address = resolve(reference, false);
  DescriptorHeader header;
  bool aligned = address % alignof(DescriptorHeader) == 0;
  if (aligned) copy_candidate(&header, address);
  if (!aligned || header.magic[0] != kDescriptorMagic0 || header.magic[1] != kDescriptorMagic1 ||
      reinterpret_cast<std::uintptr_t>(header.self) != address) {
    throw NotTransferableError("mproc: a function reference names offset " +
                               std::to_string(reference.offset) +
                               ", which holds no transferable function");
  }
  if (header.signature != signature) {
    throw NotTransferableError("mproc: a function reference names a function of another "
                               "signature than the one expected");
  }
  return reinterpret_cast<const DescriptorHeader*>(address);
}

}  // namespace mproc::detail
