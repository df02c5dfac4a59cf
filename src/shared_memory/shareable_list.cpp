// ShareableList: mproc's own layout in a SharedMemory segment.
//
//   header (16 bytes)   magic "mprocSL1" | u32 count | u32 reserved
//   slot table          count x {u32 offset, u32 capacity, u32 length, u32 type}
//   data                each slot's bytes at its offset (8-aligned)
//
// Offsets and capacities never change after creation; type and length do,
// and may be torn or forged by another process, so every read checks them.

#include "mproc/shareable_list.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>

#include "mproc/errors.hpp"

namespace mproc {
namespace {

constexpr char kMagic[8] = {'m', 'p', 'r', 'o', 'c', 'S', 'L', '1'};
constexpr std::size_t kHeaderBytes = 16;
constexpr std::size_t kSlotBytes = 16;
constexpr std::size_t kNumberBytes = 8;
constexpr std::size_t kMaxCapacity = std::size_t{1} << 31;

enum class Type : std::uint32_t { none = 0, int64 = 1, float64 = 2, boolean = 3, string = 4, bytes = 5 };

struct Slot {
  std::uint32_t offset;
  std::uint32_t capacity;
  std::uint32_t length;
  std::uint32_t type;
};
static_assert(sizeof(Slot) == kSlotBytes);

// Python's rule, 8 * (len // 8 + 1): always room for at least one more
// byte, so "12345678" gets 16 and "" gets 8. Lists made by either then have
// the same slot sizes and format().
std::size_t python_capacity(std::size_t length) { return 8 * (length / 8 + 1); }

Type type_of(const ShareableValue& value) { return static_cast<Type>(value.index()); }

std::span<const std::byte> payload(const ShareableValue& value) {
  if (auto* s = std::get_if<std::string>(&value)) return std::as_bytes(std::span(s->data(), s->size()));
  if (auto* b = std::get_if<Bytes>(&value)) return {b->data(), b->size()};
  return {};
}

std::size_t needed_capacity(const ShareableValue& value) {
  Type type = type_of(value);
  if (type != Type::string && type != Type::bytes) return kNumberBytes;
  std::size_t length = payload(value).size();
  if (length > kMaxCapacity) throw std::length_error("mproc: a ShareableList value is longer than 2 GiB");
  return python_capacity(length);
}

Slot read_slot(std::span<const std::byte> buf, std::size_t index) {
  Slot slot;
  std::memcpy(&slot, buf.data() + kHeaderBytes + index * kSlotBytes, sizeof(slot));
  return slot;
}

void write_slot(std::span<std::byte> buf, std::size_t index, const Slot& slot) {
  std::memcpy(buf.data() + kHeaderBytes + index * kSlotBytes, &slot, sizeof(slot));
}

// Writes `value` into a slot known to have room; the type last, so that a
// reader that sees the new type mostly sees its new bytes too.
void store(std::span<std::byte> buf, std::size_t index, Slot slot, const ShareableValue& value) {
  std::byte* data = buf.data() + slot.offset;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          std::memset(data, 0, kNumberBytes);
          slot.length = 0;
        } else if constexpr (std::is_same_v<T, bool>) {
          std::int64_t word = v ? 1 : 0;
          std::memcpy(data, &word, kNumberBytes);
          slot.length = kNumberBytes;
        } else if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, double>) {
          std::memcpy(data, &v, kNumberBytes);
          slot.length = kNumberBytes;
        } else {
          auto bytes = payload(value);
          if (!bytes.empty()) std::memcpy(data, bytes.data(), bytes.size());
          slot.length = static_cast<std::uint32_t>(bytes.size());
        }
      },
      value.variant());
  slot.type = static_cast<std::uint32_t>(type_of(value));
  write_slot(buf, index, slot);
}

[[noreturn]] void corrupt(const SharedMemory& shm, const std::string& why) {
  throw DecodeError("mproc: segment '" + shm.name() + "' is not a valid ShareableList: " + why);
}

}  // namespace

ShareableList::ShareableList(std::initializer_list<ShareableValue> values, std::optional<std::string> name)
    : ShareableList(std::span<const ShareableValue>(values.begin(), values.size()), std::move(name)) {}

ShareableList::ShareableList(std::span<const ShareableValue> values, std::optional<std::string> name) {
  std::size_t offset = kHeaderBytes + values.size() * kSlotBytes;
  std::vector<Slot> slots(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::size_t capacity = needed_capacity(values[i]);
    if (offset + capacity > std::numeric_limits<std::uint32_t>::max())
      throw std::length_error("mproc: a ShareableList must fit in 4 GiB");
    slots[i] = Slot{static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(capacity), 0, 0};
    offset += capacity;
  }
  shm_ = name ? SharedMemory::create(*name, offset) : SharedMemory::create(offset);
  size_ = values.size();
  auto buf = shm_.buf();
  std::memcpy(buf.data(), kMagic, sizeof(kMagic));
  auto count = static_cast<std::uint32_t>(values.size());
  std::memcpy(buf.data() + sizeof(kMagic), &count, sizeof(count));
  for (std::size_t i = 0; i < values.size(); ++i) store(buf, i, slots[i], values[i]);
}

ShareableList::ShareableList(SharedMemory shm) : shm_(std::move(shm)) { validate(); }

ShareableList ShareableList::attach(std::string_view name, bool track) {
  return ShareableList(SharedMemory::attach(name, track));
}

void ShareableList::validate() {
  auto buf = shm_.buf();
  if (buf.size() < kHeaderBytes) corrupt(shm_, "too short for a header");
  if (std::memcmp(buf.data(), kMagic, sizeof(kMagic)) != 0) corrupt(shm_, "no ShareableList header");
  std::uint32_t count = 0;
  std::memcpy(&count, buf.data() + sizeof(kMagic), sizeof(count));
  std::size_t table_end = kHeaderBytes + std::size_t{count} * kSlotBytes;
  if (table_end > buf.size()) corrupt(shm_, "its slot table is cut short");
  std::size_t next = table_end;
  for (std::size_t i = 0; i < count; ++i) {
    Slot slot = read_slot(buf, i);
    if (slot.offset < next || slot.offset % 8 != 0 || slot.capacity < kNumberBytes || slot.capacity % 8 != 0 ||
        std::size_t{slot.offset} + slot.capacity > buf.size()) {
      corrupt(shm_, "slot " + std::to_string(i) + " lies outside the segment or overlaps another");
    }
    if (slot.type > static_cast<std::uint32_t>(Type::bytes) || slot.length > slot.capacity)
      corrupt(shm_, "slot " + std::to_string(i) + " holds no valid value");
    next = std::size_t{slot.offset} + slot.capacity;
  }
  size_ = count;
}

std::size_t ShareableList::size() const { return size_; }

std::size_t ShareableList::capacity(std::size_t index) const {
  if (index >= size_) throw std::out_of_range("mproc: ShareableList index " + std::to_string(index) + " out of range");
  return read_slot(shm_.buf(), index).capacity;
}

ShareableValue ShareableList::get(std::size_t index) const {
  if (index >= size_) throw std::out_of_range("mproc: ShareableList index " + std::to_string(index) + " out of range");
  auto buf = shm_.buf();
  Slot slot = read_slot(buf, index);
  // Checked again on every read: another process may have written the slot
  // table since attach() validated it.
  if (std::size_t{slot.offset} + slot.capacity > buf.size() || slot.capacity < kNumberBytes ||
      slot.length > slot.capacity) {
    corrupt(shm_, "slot " + std::to_string(index) + " lies outside the segment");
  }
  const std::byte* data = buf.data() + slot.offset;
  switch (static_cast<Type>(slot.type)) {
    case Type::none: return {};
    case Type::int64: {
      std::int64_t v;
      std::memcpy(&v, data, sizeof(v));
      return v;
    }
    case Type::float64: {
      double v;
      std::memcpy(&v, data, sizeof(v));
      return v;
    }
    case Type::boolean: {
      std::int64_t v;
      std::memcpy(&v, data, sizeof(v));
      return v != 0;
    }
    case Type::string: return std::string(reinterpret_cast<const char*>(data), slot.length);
    case Type::bytes: return Bytes(data, data + slot.length);
  }
  corrupt(shm_, "slot " + std::to_string(index) + " holds an unknown type");
}

void ShareableList::set(std::size_t index, const ShareableValue& value) {
  if (index >= size_) throw std::out_of_range("mproc: ShareableList index " + std::to_string(index) + " out of range");
  auto buf = shm_.buf();
  Slot slot = read_slot(buf, index);
  if (std::size_t{slot.offset} + slot.capacity > buf.size() || slot.capacity < kNumberBytes)
    corrupt(shm_, "slot " + std::to_string(index) + " lies outside the segment");
  std::size_t length = payload(value).size();
  if (length > slot.capacity) {
    throw std::length_error("mproc: a value of " + std::to_string(length) + " bytes does not fit ShareableList slot " +
                            std::to_string(index) + ", which holds " + std::to_string(slot.capacity) +
                            " bytes (fixed when the list was created)");
  }
  store(buf, index, slot, value);
}

std::size_t ShareableList::count(const ShareableValue& value) const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < size_; ++i) {
    if (get(i) == value) ++n;
  }
  return n;
}

std::size_t ShareableList::index(const ShareableValue& value) const {
  for (std::size_t i = 0; i < size_; ++i) {
    if (get(i) == value) return i;
  }
  throw std::invalid_argument("mproc: value not in ShareableList '" + shm_.name() + "'");
}

std::string ShareableList::format() const {
  std::string format;
  auto buf = shm_.buf();
  for (std::size_t i = 0; i < size_; ++i) {
    Slot slot = read_slot(buf, i);
    switch (static_cast<Type>(slot.type)) {
      case Type::none: format += 'x'; break;
      case Type::int64: format += 'q'; break;
      case Type::float64: format += 'd'; break;
      case Type::boolean: format += '?'; break;
      case Type::string: format += std::to_string(slot.capacity) + 's'; break;
      case Type::bytes: format += std::to_string(slot.capacity) + 'p'; break;
      default: format += '!'; break;
    }
  }
  return format;
}

void ShareableList::save(Encoder& encoder) const { shm_.save(encoder); }

void ShareableList::load(Decoder& decoder) {
  SharedMemory shm;
  shm.load(decoder);
  *this = ShareableList(std::move(shm));
}

}  // namespace mproc
