// Function references: (module build id, offset) on the wire, an address here.
//
// Lookups read an immutable snapshot of the loaded modules through one atomic
// pointer: no lock, no system call. The main executable is never unloaded, so
// its entry is always right; for any other module (or a miss) the loader's
// generation is checked and the snapshot rebuilt if it moved (under a mutex,
// with fork bracketed so a child never inherits it locked): a dlclose'd
// library is never resolved into, nor named. Old snapshots are kept (not freed) because readers may still
// hold them; there is one per dlopen or dlclose seen, which is few.

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "mproc/codec.hpp"
#include "mproc/detail/code_ref.hpp"
#include "os/modules.hpp"
#include "os/process.hpp"

namespace mproc::detail {
namespace {

constexpr std::size_t kMaxBuildIdSize = 64;

struct ModuleTable {
  std::vector<os::Module> modules;  // the main executable first
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
    // Failure leaves fork unbracketed; it happens only when out of memory.
    (void)os::at_fork([] { refresh_mutex().lock(); }, [] { refresh_mutex().unlock(); },
                      [] { refresh_mutex().unlock(); });
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

const os::Segment* segment_holding(const os::Module& module, std::uintptr_t start, std::size_t size) {
  for (const os::Segment& s : module.segments) {
    if (start >= s.start && start < s.end && size <= s.end - start) return &s;
  }
  return nullptr;
}

// Descriptors are data: they live in readable segments without code.
bool may_hold_descriptor(const os::Segment& segment) {
  return segment.readable && !segment.executable;
}

struct Location {
  std::span<const std::byte> build_id;
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
  const ModuleTable& cached = cached_table();
  const os::Module* module = module_holding(cached, where);
  if (module != &cached.modules.front()) module = module_holding(refreshed_table(), where);
  if (module == nullptr) {
    throw NotTransferableError("mproc: the function at " + address_text(address) +
                               " is not in any loaded ELF module");
  }
  if (module->build_id.empty() || module->build_id.size() > kMaxBuildIdSize) {
    throw NotTransferableError("mproc: the function at " + address_text(address) + " is in " +
                               module_label(*module) +
                               ", which has no GNU build id; link it with -Wl,--build-id");
  }
  return {module->build_id, where - module->base};
}

void write_location(Encoder& encoder, const Location& location) {
  encoder.write(static_cast<std::uint8_t>(location.build_id.size()));
  encoder.write_raw(location.build_id.data(), location.build_id.size());
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

// The module a reference names. The main executable is never unloaded, so a
// snapshot's entry for it is always right; any other module is trusted only
// in a snapshot of the loader's current generation.
const os::Module& resolve_module(const Reference& reference) {
  const ModuleTable& cached = cached_table();
  const os::Module* module = module_with_build_id(cached, reference);
  if (module != &cached.modules.front()) {
    module = module_with_build_id(refreshed_table(), reference);
  }
  if (module == nullptr) {
    throw NotTransferableError(
        "mproc: a function reference names the module with build id " + hex(reference.build_id) +
        ", which is not loaded in this process: the sender runs a different binary or library "
        "build");
  }
  return *module;
}

// The address `reference` names, if [address, address + size) lies in one
// segment of its module (an executable one when `code` is set).
std::uintptr_t resolve(const Reference& reference, std::size_t size, bool code) {
  const os::Module& module = resolve_module(reference);
  std::uintptr_t address = module.base + reference.offset;
  bool overflows = reference.offset > UINTPTR_MAX - module.base;
  const os::Segment* segment = overflows ? nullptr : segment_holding(module, address, size);
  if (segment == nullptr || (code ? !segment->executable : !may_hold_descriptor(*segment))) {
    throw NotTransferableError("mproc: a function reference names offset " +
                               std::to_string(reference.offset) + " of " + module_label(module) +
                               ", which is not " + (code ? "code" : "a function descriptor") +
                               " there");
  }
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
  write_location(encoder, locate(address));
}

const void* read_function_address(Decoder& decoder) {
  Reference reference = read_reference(decoder);
  return reinterpret_cast<const void*>(resolve(reference, 1, true));
}

void write_descriptor(Encoder& encoder, const DescriptorHeader* descriptor) {
  write_location(encoder, locate(descriptor));
}

const DescriptorHeader* read_descriptor(Decoder& decoder, std::uint64_t signature) {
  Reference reference = read_reference(decoder);
  std::uintptr_t address = resolve(reference, sizeof(DescriptorHeader), false);
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
