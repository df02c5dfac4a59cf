// Reflection over aggregates: how many fields a struct has, references to
// them, and their declared types, with no code from the user.
//
// The field count is the largest N for which T{x1, ..., xN} compiles, where
// each x converts to anything. That equals the number of fields for
// aggregates without base classes and without C-array members (brace elision
// would count array elements); such types need a serialize() function.

#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "mproc/detail/aggregate_bindings.hpp"

namespace mproc::detail {

// Converts to any type; only ever used in unevaluated contexts, so the
// conversions are declared and never defined (nor constexpr, which would
// make them inline and draw clang's -Wundefined-inline).
struct AnyField {
  template <class T>
  operator T&() const noexcept;
  template <class T>
  operator T&&() const noexcept;
};

template <class T, class... Init>
concept brace_initializable_from = requires { T{std::declval<Init>()...}; };

template <class T, std::size_t... I>
constexpr bool brace_initializable_with(std::index_sequence<I...>) {
  return brace_initializable_from<T, decltype(void(I), AnyField{})...>;
}

template <class T, std::size_t N = 0>
constexpr std::size_t count_fields() {
  if constexpr (N > kMaxAggregateFields) {
    return N;  // too many: reported by the codec's checks
  } else if constexpr (!brace_initializable_with<T>(std::make_index_sequence<N + 1>{})) {
    return N;
  } else {
    return count_fields<T, N + 1>();
  }
}

// The number of fields of aggregate T.
template <class T>
inline constexpr std::size_t field_count = count_fields<T>();

// Calls f(field0, field1, ...) with references to t's fields.
template <class T, class F>
constexpr decltype(auto) visit_fields(T& t, F&& f) {
  return bind_fields<field_count<std::remove_const_t<T>>>(t, std::forward<F>(f));
}

// TypeList of T's fields as declared (a reference or const member keeps its
// reference or const).
template <class T>
using field_types = decltype(declared_field_types<field_count<T>>(std::declval<T&>()));

}  // namespace mproc::detail
