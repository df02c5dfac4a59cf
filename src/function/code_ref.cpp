// Function references: (module build id, offset) on the wire, an address here.
//
// The table of loaded modules is rebuilt whenever the dynamic loader's
// generation changes (a dlopen or dlclose), so a reference never resolves
// into a module that has gone. Readers copy a shared pointer to the current
// table under a mutex held for nanoseconds; fork is bracketed so a child
// never inherits the mutex locked.

#include <algorithm>
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
  std::vector<os::Module> modules;
  os::ModuleGeneration generation;
};

std::mutex& table_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::shared_ptr<const ModuleTable>& table_slot() {
  static std::shared_ptr<const ModuleTable> slot;
  return slot;
}

void lock_table_around_fork() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Failure leaves fork unbracketed; it happens only when out of memory.
    (void)os::at_fork([] { table_mutex().lock(); }, [] { table_mutex().unlock(); },
                      [] { table_mutex().unlock(); });
  });
}

std::shared_ptr<const ModuleTable> current_table() {
  lock_table_around_fork();
  os::ModuleGeneration generation = os::module_generation();
  std::lock_guard lock(table_mutex());
  auto& slot = table_slot();
  if (!slot || slot->generation != generation) {
    auto table = std::make_shared<ModuleTable>();
    table->modules = os::loaded_modules(table->generation);
    slot = std::move(table);
  }
  return slot;
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
bool may_hold_descriptor(const os::Segment& segment) { return segment.readable && !segment.executable; }

struct Location {
  std::span<const std::byte> build_id;
  std::uint64_t offset;
};

// Finds the module holding `address`. The table is shared-owned by the caller.
Location locate(const ModuleTable& table, const void* address) {
  auto where = reinterpret_cast<std::uintptr_t>(address);
  for (const os::Module& module : table.modules) {
    if (segment_holding(module, where, 1) == nullptr) continue;
    if (module.build_id.empty() || module.build_id.size() > kMaxBuildIdSize) {
      throw NotTransferableError("mproc: the function at " + address_text(address) + " is in " +
                                 module_label(module) +
                                 ", which has no GNU build id; link it with -Wl,--build-id");
    }
    return {module.build_id, where - module.base};
  }
  throw NotTransferableError("mproc: the function at " + address_text(address) +
                             " is not in any loaded ELF module");
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

const os::Module& module_with_build_id(const ModuleTable& table, const Reference& reference) {
  for (const os::Module& module : table.modules) {
    if (std::ranges::equal(module.build_id, reference.build_id)) return module;
  }
  throw NotTransferableError(
      "mproc: a function reference names the module with build id " + hex(reference.build_id) +
      ", which is not loaded in this process: the sender runs a different binary or library "
      "build");
}

// The address `reference` names, if [address, address + size) lies in one
// segment of its module (an executable one when `code` is set).
std::uintptr_t resolve(const ModuleTable& table, const Reference& reference, std::size_t size,
                       bool code) {
  const os::Module& module = module_with_build_id(table, reference);
  std::uintptr_t address = module.base + reference.offset;
  const os::Segment* segment =
      reference.offset < UINTPTR_MAX - module.base ? segment_holding(module, address, size) : nullptr;
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
  auto table = current_table();
  write_location(encoder, locate(*table, address));
}

const void* read_function_address(Decoder& decoder) {
  Reference reference = read_reference(decoder);
  auto table = current_table();
  return reinterpret_cast<const void*>(resolve(*table, reference, 1, true));
}

void write_descriptor(Encoder& encoder, const DescriptorHeader* descriptor) {
  auto table = current_table();  // owns the build id bytes until written
  write_location(encoder, locate(*table, descriptor));
}

const DescriptorHeader* read_descriptor(Decoder& decoder, std::uint64_t signature) {
  Reference reference = read_reference(decoder);
  auto table = current_table();
  std::uintptr_t address = resolve(*table, reference, sizeof(DescriptorHeader), false);
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
