#include "os/modules.hpp"

#include <elf.h>
#include <link.h>

#include <cstring>

namespace mproc::os {
namespace {

std::size_t align4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

// Finds the GNU build id among the notes of one PT_NOTE segment.
std::vector<std::byte> find_build_id(const char* notes, std::size_t size) {
  const char* p = notes;
  const char* end = notes + size;
  while (static_cast<std::size_t>(end - p) >= sizeof(ElfW(Nhdr))) {
    ElfW(Nhdr) header;
    std::memcpy(&header, p, sizeof(header));
    const char* name = p + sizeof(header);
    const char* desc = name + align4(header.n_namesz);
    const char* next = desc + align4(header.n_descsz);
    if (next > end || next < p) break;
    if (header.n_type == NT_GNU_BUILD_ID && header.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
      auto* first = reinterpret_cast<const std::byte*>(desc);
      return {first, first + header.n_descsz};
    }
    p = next;
  }
  return {};
}

Module describe(const dl_phdr_info& info) {
  Module m;
  m.path = info.dlpi_name != nullptr ? info.dlpi_name : "";
  m.base = info.dlpi_addr;
  for (ElfW(Half) i = 0; i < info.dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info.dlpi_phdr[i];
    std::uintptr_t start = info.dlpi_addr + ph.p_vaddr;
    if (ph.p_type == PT_LOAD) {
      m.segments.push_back({start, start + ph.p_memsz, (ph.p_flags & PF_R) != 0,
                            (ph.p_flags & PF_W) != 0, (ph.p_flags & PF_X) != 0});
    } else if (ph.p_type == PT_GNU_RELRO) {
      m.relro.push_back({start, start + ph.p_memsz, true, false, false});
    } else if (ph.p_type == PT_NOTE && m.build_id.empty()) {
      m.build_id = find_build_id(reinterpret_cast<const char*>(start), ph.p_memsz);
    }
  }
  return m;
}

struct Listing {
  std::vector<Module>* modules;
  ModuleGeneration* generation;
};

}  // namespace

std::vector<Module> loaded_modules(ModuleGeneration& generation) {
  std::vector<Module> modules;
  Listing listing{&modules, &generation};
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        auto* out = static_cast<Listing*>(data);
        *out->generation = {info->dlpi_adds, info->dlpi_subs};
        out->modules->push_back(describe(*info));
        return 0;
      },
      &listing);
  return modules;
}

ModuleGeneration module_generation() noexcept {
  ModuleGeneration generation;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        *static_cast<ModuleGeneration*>(data) = {info->dlpi_adds, info->dlpi_subs};
        return 1;  // the counters are the same in every entry: stop at the first
      },
      &generation);
  return generation;
}

}  // namespace mproc::os
