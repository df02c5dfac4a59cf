#include "shared/arena.hpp"

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>

#include "common/raise.hpp"
#include "mproc/errors.hpp"
#include "os/memory.hpp"
#include "os/process.hpp"
#include "os/random.hpp"
#include "runtime/runtime.hpp"
#include "shared/lock_word.hpp"

namespace mproc::detail {
namespace {

constexpr std::uint64_t kArenaMagic = 0x4e5241636f72706dULL;  // "mprocARN"
constexpr std::size_t kArenaSize = std::size_t{1} << 20;
constexpr std::size_t kHeaderSize = 4096;
constexpr std::size_t kBlockHeaderSize = 64;
constexpr std::size_t kSmallestBlock = 64;
constexpr std::size_t kClassCount = 11;  // 64 B .. 64 KiB, header included
constexpr std::uint32_t kDedicated = 0xffffffff;

struct ArenaHeader {
  std::uint64_t magic;
  std::uint64_t id;
  std::uint64_t size;
  os::FutexWord lock;
  std::uint32_t dedicated;  // 1: the arena holds one large block
  std::uint64_t bump;       // where the next fresh block starts
  std::uint64_t free_lists[kClassCount];  // first free block of each class (0: none)
};
static_assert(sizeof(ArenaHeader) <= kHeaderSize);

struct BlockHeader {
  std::atomic<std::uint32_t> references;
  std::uint32_t kind;
  std::uint64_t size;  // payload bytes
  std::uint32_t size_class;
  std::uint32_t reserved;
  std::uint64_t next_free;  // in a free list: the next free block
};
static_assert(sizeof(BlockHeader) <= kBlockHeaderSize);

std::size_t class_bytes(std::size_t size_class) { return kSmallestBlock << size_class; }

// The smallest class holding `payload` bytes, or kClassCount if none does.
std::size_t class_for(std::size_t payload) {
  std::size_t size_class = 0;
  while (size_class < kClassCount && class_bytes(size_class) - kBlockHeaderSize < payload) ++size_class;
  return size_class;
}

struct Arena {
  std::uint64_t id = 0;
  UniqueFd fd;
  os::Mapping mapping;

  ArenaHeader& header() const { return *reinterpret_cast<ArenaHeader*>(mapping.data()); }
  BlockHeader& block(std::size_t offset) const {
    return *reinterpret_cast<BlockHeader*>(mapping.data() + offset);
  }
};

// Holds the arena's allocator lock.
class ArenaLock {
 public:
  explicit ArenaLock(const Arena& arena) : word_(arena.header().lock) {
    // A dead holder left the arena consistent (see the header): go on.
    (void)lock_word_acquire(word_, lock_owner_id(), true, std::nullopt);
  }
  ~ArenaLock() { lock_word_release(word_); }
  ArenaLock(const ArenaLock&) = delete;
  ArenaLock& operator=(const ArenaLock&) = delete;

 private:
  os::FutexWord& word_;
};

std::shared_ptr<Arena> create_arena(std::size_t size, bool dedicated) {
  auto arena = std::make_shared<Arena>();
  arena->id = unwrap(os::random_u64(), "creating shared memory");
  arena->fd = unwrap(os::memory_file("mproc-arena", size), "creating shared memory");
  arena->mapping = unwrap(os::map_shared(arena->fd.get(), size), "creating shared memory");
  ArenaHeader& header = arena->header();
  header.id = arena->id;
  header.size = size;
  header.dedicated = dedicated ? 1 : 0;
  header.bump = kHeaderSize;
  std::atomic_ref<std::uint64_t>(header.magic).store(kArenaMagic, std::memory_order_release);
  return arena;
}

}  // namespace

class SharedBlock {
 public:
  SharedBlock(std::shared_ptr<Arena> arena, std::size_t offset);
  ~SharedBlock();
  SharedBlock(const SharedBlock&) = delete;
  SharedBlock& operator=(const SharedBlock&) = delete;

  BlockHeader& header() const { return arena_->block(offset_); }
  std::byte* data() const { return arena_->mapping.data() + offset_ + kBlockHeaderSize; }
  const Arena& arena() const { return *arena_; }
  std::size_t offset() const { return offset_; }

  // Gives back this process's reference to the block.
  void release_reference() noexcept;

  SharedBlock* prev = nullptr;  // this process's live blocks (Registry::live)
  SharedBlock* next = nullptr;

 private:
  std::shared_ptr<Arena> arena_;
  std::size_t offset_;
};

namespace {

void free_block(const Arena& arena, std::size_t offset) noexcept {
  ArenaHeader& header = arena.header();
  if (header.dedicated != 0) return;  // its memory goes with the arena
  BlockHeader& block = arena.block(offset);
  ArenaLock lock(arena);
  std::uint32_t size_class = block.size_class;
  if (size_class >= kClassCount) return;
  block.next_free = header.free_lists[size_class];
  header.free_lists[size_class] = offset;
}

// This process's arenas and live blocks.
class Registry {
 public:
  static Registry& get() {
    static Registry* registry = new Registry();  // never destroyed: handles may outlive statics
    return *registry;
  }

  std::shared_ptr<SharedBlock> allocate(BlockKind kind, std::size_t size) {
    std::size_t size_class = class_for(size);
    std::shared_ptr<Arena> arena;
    std::size_t offset = 0;
    if (size_class == kClassCount) {
      std::size_t page = os::page_size();
      std::size_t bytes = (kHeaderSize + kBlockHeaderSize + size + page - 1) / page * page;
      arena = create_arena(bytes, true);
      offset = kHeaderSize;
      arena->header().bump = bytes;
      remember(arena);
    } else {
      std::lock_guard lock(mutex_);
      for (;;) {
        if (!current_) {
          current_ = create_arena(kArenaSize, false);
          arenas_[current_->id] = current_;
        }
        offset = carve(*current_, size_class);
        if (offset != 0) break;
        current_.reset();  // full: start another
      }
      arena = current_;
    }
    BlockHeader& block = arena->block(offset);
    std::memset(arena->mapping.data() + offset + kBlockHeaderSize, 0,
                size_class == kClassCount ? size : class_bytes(size_class) - kBlockHeaderSize);
    block.kind = static_cast<std::uint32_t>(kind);
    block.size = size_class == kClassCount ? size : class_bytes(size_class) - kBlockHeaderSize;
    block.size_class = size_class == kClassCount ? kDedicated : static_cast<std::uint32_t>(size_class);
    block.next_free = 0;
    block.references.store(1, std::memory_order_release);
    return std::make_shared<SharedBlock>(std::move(arena), offset);
  }

  // The arena named by a received reference: the one already mapped here,
  // or `fd` mapped after checking that it is one.
  std::shared_ptr<Arena> arena_for(std::uint64_t id, UniqueFd fd) {
    {
      std::lock_guard lock(mutex_);
      auto found = arenas_.find(id);
      if (found != arenas_.end()) {
        if (auto arena = found->second.lock()) return arena;
      }
    }
    if (!fd.valid()) throw DecodeError("mproc: a shared object's reference came without its memory");
    auto size = os::file_size(fd.get());
    if (!size.ok() || size.value < kHeaderSize + kBlockHeaderSize || size.value % os::page_size() != 0) {
      throw DecodeError("mproc: a shared object's memory is not an mproc arena");
    }
    auto arena = std::make_shared<Arena>();
    arena->mapping = unwrap(os::map_shared(fd.get(), size.value), "receiving a shared object");
    ArenaHeader& header = arena->header();
    if (std::atomic_ref<std::uint64_t>(header.magic).load(std::memory_order_acquire) != kArenaMagic ||
        header.id != id || header.size != size.value) {
      throw DecodeError("mproc: a shared object's memory is not the mproc arena it claims to be");
    }
    arena->id = id;
    arena->fd = std::move(fd);
    return remember(arena);
  }

  void add_live(SharedBlock* block) {
    std::lock_guard lock(mutex_);
    block->next = live_;
    if (live_ != nullptr) live_->prev = block;
    live_ = block;
  }

  void remove_live(SharedBlock* block) {
    std::lock_guard lock(mutex_);
    if (block->prev != nullptr) block->prev->next = block->next;
    if (block->next != nullptr) block->next->prev = block->prev;
    if (live_ == block) live_ = block->next;
  }

  std::size_t allocated_bytes() {
    std::lock_guard lock(mutex_);
    if (!current_) return 0;
    const ArenaHeader& header = current_->header();
    ArenaLock arena_lock(*current_);
    std::size_t bytes = header.bump - kHeaderSize;
    for (std::size_t size_class = 0; size_class < kClassCount; ++size_class) {
      for (std::uint64_t offset = header.free_lists[size_class]; offset != 0;
           offset = current_->block(offset).next_free) {
        bytes -= class_bytes(size_class);
      }
    }
    return bytes;
  }

  std::size_t mapped_count() {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (auto& [id, arena] : arenas_) {
      if (!arena.expired()) ++n;
    }
    return n;
  }

 private:
  Registry() {
    (void)os::at_fork([] { get().mutex_.lock(); }, [] { get().mutex_.unlock(); }, [] { get().after_fork_in_child(); });
    Runtime::get().add_child_exit_hook([] { get().release_all_on_exit(); });
  }

  std::shared_ptr<Arena> remember(std::shared_ptr<Arena> arena) {
    std::lock_guard lock(mutex_);
    auto& slot = arenas_[arena->id];
    if (auto existing = slot.lock()) return existing;  // another thread mapped it first
    slot = arena;
    return arena;
  }

  // Takes a block of `size_class` from `arena`; 0 if the arena is full.
  static std::size_t carve(const Arena& arena, std::size_t size_class) {
    ArenaHeader& header = arena.header();
    ArenaLock lock(arena);
    std::uint64_t offset = header.free_lists[size_class];
    if (offset != 0) {
      header.free_lists[size_class] = arena.block(offset).next_free;
      return offset;
    }
    if (header.bump + class_bytes(size_class) > header.size) return 0;
    offset = header.bump;
    header.bump += class_bytes(size_class);
    return offset;
  }

  // The child holds copies of its parent's handles: count its references.
  void after_fork_in_child() {
    for (SharedBlock* block = live_; block != nullptr; block = block->next) {
      block->header().references.fetch_add(1, std::memory_order_relaxed);
    }
    mutex_.unlock();
  }

  // A child leaving gives back its references (its handles are never
  // destroyed: it leaves with _exit).
  void release_all_on_exit() noexcept {
    std::lock_guard lock(mutex_);
    for (SharedBlock* block = live_; block != nullptr; block = block->next) block->release_reference();
    live_ = nullptr;
  }

  std::mutex mutex_;  // guards everything below
  std::map<std::uint64_t, std::weak_ptr<Arena>> arenas_;
  std::shared_ptr<Arena> current_;  // where small blocks are carved
  SharedBlock* live_ = nullptr;
};

}  // namespace

SharedBlock::SharedBlock(std::shared_ptr<Arena> arena, std::size_t offset)
    : arena_(std::move(arena)), offset_(offset) {
  Registry::get().add_live(this);
}

SharedBlock::~SharedBlock() {
  Registry::get().remove_live(this);
  release_reference();
}

void SharedBlock::release_reference() noexcept {
  if (header().references.fetch_sub(1, std::memory_order_acq_rel) == 1) free_block(*arena_, offset_);
}

std::shared_ptr<SharedBlock> allocate_block(BlockKind kind, std::size_t size) {
  return Registry::get().allocate(kind, size);
}

void* block_data(const SharedBlock& block) noexcept { return block.data(); }
std::size_t block_size(const SharedBlock& block) noexcept { return block.header().size; }

void save_block(Encoder& encoder, const SharedBlock& block) {
  encoder.write_fd(block.arena().fd.get());
  encoder.write(block.arena().id);
  encoder.write(static_cast<std::uint64_t>(block.offset()));
  // The reference in flight: the receiver adopts it.
  block.header().references.fetch_add(1, std::memory_order_relaxed);
}

std::shared_ptr<SharedBlock> load_block(Decoder& decoder, BlockKind kind, std::size_t size) {
  UniqueFd fd = decoder.take_fd();
  std::uint64_t id = 0, offset = 0;
  decoder(id, offset);
  auto arena = Registry::get().arena_for(id, std::move(fd));
  const ArenaHeader& header = arena->header();
  bool in_range = offset >= kHeaderSize && offset % kSmallestBlock == 0 &&
                  offset <= header.size - kBlockHeaderSize;
  if (!in_range) throw DecodeError("mproc: a shared object's reference points outside its arena");
  const BlockHeader& block = arena->block(offset);
  if (block.kind != static_cast<std::uint32_t>(kind) || block.size < size ||
      block.size > header.size - offset - kBlockHeaderSize) {
    throw DecodeError("mproc: a shared object's reference names an object of another kind");
  }
  return std::make_shared<SharedBlock>(std::move(arena), offset);
}

std::size_t mapped_arena_count() { return Registry::get().mapped_count(); }
std::size_t allocated_bytes_in_current_arena() { return Registry::get().allocated_bytes(); }

}  // namespace mproc::detail
