#include "os/elf.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "mproc/unique_fd.hpp"
#include "os/syscall.hpp"

namespace mproc::os {
namespace {

// A read-only view of a mapped file, every access bounds-checked.
class FileView {
 public:
  FileView(const std::byte* data, std::size_t size) : data_(data), size_(size) {}

  template <class T>
  bool read(std::size_t offset, T& out) const {
    if (offset > size_ || sizeof(T) > size_ - offset) return false;
    std::memcpy(&out, data_ + offset, sizeof(T));
    return true;
  }
  bool contains(std::size_t offset, std::size_t size) const {
    return offset <= size_ && size <= size_ - offset;
  }
  const std::byte* at(std::size_t offset) const { return data_ + offset; }

 private:
  const std::byte* data_;
  std::size_t size_;
};

bool is_function(const Elf64_Sym& symbol) {
  unsigned type = ELF64_ST_TYPE(symbol.st_info);
  return (type == STT_FUNC || type == STT_GNU_IFUNC) && symbol.st_shndx != SHN_UNDEF &&
         symbol.st_value != 0;
}

void collect_symbols(const FileView& file, const Elf64_Shdr& table, FunctionSymbols& out) {
  if (table.sh_entsize != sizeof(Elf64_Sym) || !file.contains(table.sh_offset, table.sh_size)) return;
  for (std::size_t i = 0; i < table.sh_size / sizeof(Elf64_Sym); ++i) {
    Elf64_Sym symbol;
    if (file.read(table.sh_offset + i * sizeof(Elf64_Sym), symbol) && is_function(symbol)) {
      out.starts.push_back(symbol.st_value);
    }
  }
}

void collect_build_id(const FileView& file, const Elf64_Shdr& notes, FunctionSymbols& out) {
  std::size_t at = notes.sh_offset;
  if (!file.contains(at, notes.sh_size)) return;
  std::size_t end = at + notes.sh_size;
  while (end - at >= sizeof(Elf64_Nhdr)) {
    Elf64_Nhdr header;
    file.read(at, header);
    std::size_t name_at = at + sizeof(header);
    std::size_t desc_at = name_at + ((header.n_namesz + 3) & ~3u);
    std::size_t next = desc_at + ((header.n_descsz + 3) & ~3u);
    if (next > end || next <= at) return;
    if (header.n_type == NT_GNU_BUILD_ID && header.n_namesz == 4 &&
        std::memcmp(file.at(name_at), "GNU", 4) == 0) {
      out.build_id.assign(file.at(desc_at), file.at(desc_at) + header.n_descsz);
      return;
    }
    at = next;
  }
}

Result<FunctionSymbols> parse(const FileView& file) {
  Elf64_Ehdr header;
  if (!file.read(0, header) || std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 ||
      header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_ident[EI_DATA] != ELFDATA2LSB) {
    return {{}, Error::of(ENOEXEC, "read ELF header")};
  }
  if (header.e_shentsize != sizeof(Elf64_Shdr)) return {{}, Error::of(EINVAL, "read ELF sections")};
  FunctionSymbols out;
  for (std::size_t i = 0; i < header.e_shnum; ++i) {
    Elf64_Shdr section;
    if (!file.read(header.e_shoff + i * sizeof(Elf64_Shdr), section)) {
      return {{}, Error::of(EINVAL, "read ELF sections")};
    }
    if (section.sh_type == SHT_SYMTAB) out.has_symtab = true;
    if (section.sh_type == SHT_SYMTAB || section.sh_type == SHT_DYNSYM) collect_symbols(file, section, out);
    if (section.sh_type == SHT_NOTE && out.build_id.empty()) collect_build_id(file, section, out);
  }
  std::sort(out.starts.begin(), out.starts.end());
  out.starts.erase(std::unique(out.starts.begin(), out.starts.end()), out.starts.end());
  return {std::move(out), {}};
}

}  // namespace

Result<FunctionSymbols> read_function_symbols(const char* path) {
  UniqueFd fd(MPROC_SYSCALL(open)(path, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return {{}, Error::last("open")};
  struct stat info;
  if (MPROC_SYSCALL(fstat)(fd.get(), &info) != 0) return {{}, Error::last("fstat")};
  auto size = static_cast<std::size_t>(info.st_size);
  if (size == 0) return {{}, Error::of(ENOEXEC, "read ELF header")};
  void* mapped = MPROC_SYSCALL(mmap)(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (mapped == MAP_FAILED) return {{}, Error::last("mmap")};
  auto result = parse(FileView(static_cast<const std::byte*>(mapped), size));
  ::munmap(mapped, size);
  return result;
}

}  // namespace mproc::os
