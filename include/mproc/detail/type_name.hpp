// The name of a type as the compiler spells it, available at compile time.
// Used for fingerprints of user types and for messages; the spelling is
// compiler-specific (g++ and clang differ), which only matters between
// binaries built by different compilers.

#pragma once

#include <string_view>

namespace mproc::detail {

template <class T>
constexpr std::string_view pretty_function() noexcept {
  return __PRETTY_FUNCTION__;
}

// Extracts T's name from "... [with T = NAME; ...]" (g++) or "... [T = NAME]" (clang).
constexpr std::string_view extract_type_name(std::string_view pretty) noexcept {
  constexpr std::string_view marker = "T = ";
  std::size_t start = pretty.find(marker);
  if (start == std::string_view::npos) return pretty;
  start += marker.size();
  std::size_t end = pretty.find(';', start);
  if (end == std::string_view::npos) end = pretty.rfind(']');
  if (end == std::string_view::npos || end < start) return pretty.substr(start);
  return pretty.substr(start, end - start);
}

// A variable, so that it is always computed at compile time.
template <class T>
inline constexpr std::string_view type_name_v = extract_type_name(pretty_function<T>());

template <class T>
constexpr std::string_view type_name() noexcept {
  return type_name_v<T>;
}

}  // namespace mproc::detail
