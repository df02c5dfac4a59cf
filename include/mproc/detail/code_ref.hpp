// References to code in the ELF modules of this process, as they travel:
// (the module's GNU build id, the offset from the module's load address).
// The receiver finds the module with the same build id in its own address
// space, so the reference survives address-space randomisation and a fresh
// exec, and fails cleanly (NotTransferableError) in a different binary.
//
// Wire form: [u8 id length (1..64)][id bytes][u64 offset].

#pragma once

#include <cstdint>

namespace mproc {
class Encoder;
class Decoder;
}  // namespace mproc

namespace mproc::detail {

// The first member of every transferable-function descriptor (function.hpp).
// A received descriptor reference is accepted only if the bytes there carry
// the magic, a pointer to their own address (which only a real, relocated
// descriptor has) and the expected signature fingerprint.
struct DescriptorHeader {
  std::uint64_t magic[2];
  const DescriptorHeader* self;
  std::uint64_t signature;
};

inline constexpr std::uint64_t kDescriptorMagic0 = 0x6d70726f632d666eull;  // "mproc-fn"
inline constexpr std::uint64_t kDescriptorMagic1 = 0x2d64657363726970ull;  // "-descrip"

// Writes a reference to the function at `address`. Throws
// NotTransferableError if it is not in a module with a build id.
void write_function_address(Encoder& encoder, const void* address);

// Reads a function reference and returns the address it names here, checked
// to lie in an executable segment of the module with that build id.
const void* read_function_address(Decoder& decoder);

// Writes a reference to a descriptor.
void write_descriptor(Encoder& encoder, const DescriptorHeader* descriptor);

// Reads a descriptor reference and returns the descriptor it names here,
// checked as described above against `signature`.
const DescriptorHeader* read_descriptor(Decoder& decoder, std::uint64_t signature);

// Reads the table of loaded modules and the main executable's function
// symbols now, so that the children a fork server forks find them made.
void warm_function_references() noexcept;

// While one lives in a thread, plain function pointers read there are not
// checked against their module's symbol table (their segment and build id
// still are). Only for a message the process that made this one encoded
// (a spawn child's request): the sender checked each pointer when encoding
// it, and reading a large binary's symbols costs a fresh process ~1 ms.
class TrustedReferencesScope {
 public:
  TrustedReferencesScope() noexcept;
  ~TrustedReferencesScope();
  TrustedReferencesScope(const TrustedReferencesScope&) = delete;
  TrustedReferencesScope& operator=(const TrustedReferencesScope&) = delete;

 private:
  bool previous_;
};

}  // namespace mproc::detail
