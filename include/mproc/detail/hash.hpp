// Compile-time 64-bit hashing for type fingerprints.

#pragma once

#include <cstdint>
#include <string_view>

namespace mproc::detail {

// FNV-1a over the characters of `text`.
constexpr std::uint64_t hash_text(std::string_view text) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

// Order-sensitive combination of two hashes (a splitmix64 finalizer over both).
constexpr std::uint64_t hash_combine(std::uint64_t seed, std::uint64_t value) noexcept {
  std::uint64_t x = seed ^ (value + 0x9e3779b97f4a7c15ull + (seed << 6) + (seed >> 2));
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

template <class... V>
constexpr std::uint64_t hash_all(std::string_view tag, V... values) noexcept {
  std::uint64_t h = hash_text(tag);
  ((h = hash_combine(h, static_cast<std::uint64_t>(values))), ...);
  return h;
}

}  // namespace mproc::detail
