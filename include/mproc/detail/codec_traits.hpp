// How the codec sees a type: its kind, whether it is copied as raw bytes, the
// fewest bytes its encoding can take, its fingerprint, and whether it can
// cross at all. Everything here is computed at compile time.

#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "mproc/detail/aggregate.hpp"
#include "mproc/detail/hash.hpp"
#include "mproc/detail/type_name.hpp"

namespace mproc {

class UniqueFd;
class Encoder;
class Decoder;

// access
//
// Befriend this to keep serialize(), save() or load() private:
//   friend struct mproc::access;
struct access {
  template <class T, class A>
  static auto serialize(T& t, A& a) -> decltype(t.serialize(a)) { return t.serialize(a); }
  template <class T, class A>
  static auto save(const T& t, A& a) -> decltype(t.save(a)) { return t.save(a); }
  template <class T, class A>
  static auto load(T& t, A& a) -> decltype(t.load(a)) { return t.load(a); }
};

}  // namespace mproc

namespace mproc::detail {

// ---------------------------------------------------------------------------
// Recognising std templates

template <class T, template <class...> class Template>
inline constexpr bool is_specialization_of = false;
template <template <class...> class Template, class... A>
inline constexpr bool is_specialization_of<Template<A...>, Template> = true;

template <class T>
inline constexpr bool is_std_array = false;
template <class T, std::size_t N>
inline constexpr bool is_std_array<std::array<T, N>> = true;

template <class T>
inline constexpr bool is_std_span = false;
template <class T, std::size_t N>
inline constexpr bool is_std_span<std::span<T, N>> = true;

template <class T>
inline constexpr bool is_char_type =
    std::is_same_v<T, char> || std::is_same_v<T, wchar_t> || std::is_same_v<T, char8_t> ||
    std::is_same_v<T, char16_t> || std::is_same_v<T, char32_t>;

// Sequences: count, then elements.
template <class T>
inline constexpr bool is_sequence = is_specialization_of<T, std::vector> ||
                                    is_specialization_of<T, std::deque> ||
                                    is_specialization_of<T, std::list>;

template <class T>
inline constexpr bool is_set = is_specialization_of<T, std::set> ||
                               is_specialization_of<T, std::multiset> ||
                               is_specialization_of<T, std::unordered_set> ||
                               is_specialization_of<T, std::unordered_multiset>;

template <class T>
inline constexpr bool is_map = is_specialization_of<T, std::map> ||
                               is_specialization_of<T, std::multimap> ||
                               is_specialization_of<T, std::unordered_map> ||
                               is_specialization_of<T, std::unordered_multimap>;

// Multi-containers accept equal keys; the others reject them when decoding.
template <class T>
inline constexpr bool allows_duplicate_keys =
    is_specialization_of<T, std::multiset> || is_specialization_of<T, std::unordered_multiset> ||
    is_specialization_of<T, std::multimap> || is_specialization_of<T, std::unordered_multimap>;

template <class T>
constexpr std::string_view container_tag() {
  if constexpr (is_specialization_of<T, std::vector>) return "vector";
  else if constexpr (is_specialization_of<T, std::deque>) return "deque";
  else if constexpr (is_specialization_of<T, std::list>) return "list";
  else if constexpr (is_specialization_of<T, std::set>) return "set";
  else if constexpr (is_specialization_of<T, std::multiset>) return "multiset";
  else if constexpr (is_specialization_of<T, std::unordered_set>) return "unordered_set";
  else if constexpr (is_specialization_of<T, std::unordered_multiset>) return "unordered_multiset";
  else if constexpr (is_specialization_of<T, std::map>) return "map";
  else if constexpr (is_specialization_of<T, std::multimap>) return "multimap";
  else if constexpr (is_specialization_of<T, std::unordered_map>) return "unordered_map";
  else return "unordered_multimap";
}

template <class T>
inline constexpr bool is_smart_pointer = is_specialization_of<T, std::unique_ptr> ||
                                         is_specialization_of<T, std::shared_ptr> ||
                                         is_specialization_of<T, std::weak_ptr>;

template <class T>
inline constexpr bool is_view = is_specialization_of<T, std::basic_string_view> || is_std_span<T> ||
                                is_specialization_of<T, std::reference_wrapper>;

// An enum with a fixed underlying type accepts every value of that type;
// direct-list-initialisation from an integer compiles only for such enums.
template <class T>
concept fixed_enum = std::is_enum_v<T> && requires { T{std::underlying_type_t<T>{}}; };

// ---------------------------------------------------------------------------
// User-provided serialization, in cereal's convention

template <class T>
concept member_serialize = requires(T& t, Encoder& e, Decoder& d) {
  access::serialize(t, e);
  access::serialize(t, d);
};
template <class T>
concept member_save_load = requires(const T& ct, T& t, Encoder& e, Decoder& d) {
  access::save(ct, e);
  access::load(t, d);
};
template <class T>
concept free_serialize = requires(T& t, Encoder& e, Decoder& d) {
  serialize(e, t);
  serialize(d, t);
};
template <class T>
concept free_save_load = requires(const T& ct, T& t, Encoder& e, Decoder& d) {
  save(e, ct);
  load(d, t);
};
template <class T>
concept custom_serialization =
    member_serialize<T> || member_save_load<T> || free_serialize<T> || free_save_load<T>;

// A type whose custom serialization wraps other values it cannot vouch for
// (mproc::Partial) specializes this to check them; see transferable below.
template <class T>
struct custom_parts_transferable : std::true_type {};

// ---------------------------------------------------------------------------
// Kinds

enum class Kind {
  boolean,
  arithmetic,
  enumeration,
  function_pointer,
  file_descriptor,
  string,
  sequence,
  array,
  set,
  map,
  pair,
  tuple,
  optional,
  variant,
  duration,
  time_point,
  custom,
  aggregate,
  stateless,
  // Kinds that cannot cross; each has its own diagnostic in codec.hpp.
  reference,
  raw_pointer,
  c_array,
  unfixed_enum,
  std_function,
  smart_pointer,
  view,
  union_type,
  capturing_lambda,
  cv_qualified,
  too_many_fields,
  unknown,
};

template <class T>
constexpr bool is_lambda_name() {
  constexpr std::string_view name = type_name<T>();
  return name.find("<lambda") != std::string_view::npos ||
         name.find("(lambda at") != std::string_view::npos;
}

template <class T>
constexpr Kind kind_of() {
  if constexpr (std::is_reference_v<T>) return Kind::reference;
  else if constexpr (std::is_const_v<T> || std::is_volatile_v<T>) return Kind::cv_qualified;
  else if constexpr (std::is_same_v<T, bool>) return Kind::boolean;
  else if constexpr (std::is_arithmetic_v<T>) return Kind::arithmetic;
  else if constexpr (fixed_enum<T>) return Kind::enumeration;
  else if constexpr (std::is_enum_v<T>) return Kind::unfixed_enum;
  else if constexpr (std::is_pointer_v<T> && std::is_function_v<std::remove_pointer_t<T>>)
    return Kind::function_pointer;
  else if constexpr (std::is_pointer_v<T> || std::is_member_pointer_v<T> ||
                     std::is_null_pointer_v<T>)
    return Kind::raw_pointer;
  else if constexpr (std::is_array_v<T>) return Kind::c_array;
  else if constexpr (std::is_same_v<T, UniqueFd>) return Kind::file_descriptor;
  else if constexpr (is_specialization_of<T, std::basic_string>) return Kind::string;
  else if constexpr (is_sequence<T>) return Kind::sequence;
  else if constexpr (is_std_array<T>) return Kind::array;
  else if constexpr (is_set<T>) return Kind::set;
  else if constexpr (is_map<T>) return Kind::map;
  else if constexpr (is_specialization_of<T, std::pair>) return Kind::pair;
  else if constexpr (is_specialization_of<T, std::tuple>) return Kind::tuple;
  else if constexpr (is_specialization_of<T, std::optional>) return Kind::optional;
  else if constexpr (is_specialization_of<T, std::variant>) return Kind::variant;
  else if constexpr (is_specialization_of<T, std::chrono::duration>) return Kind::duration;
  else if constexpr (is_specialization_of<T, std::chrono::time_point>) return Kind::time_point;
  else if constexpr (is_specialization_of<T, std::function>) return Kind::std_function;
  else if constexpr (is_smart_pointer<T>) return Kind::smart_pointer;
  else if constexpr (is_view<T>) return Kind::view;
  else if constexpr (custom_serialization<T>) return Kind::custom;
  else if constexpr (std::is_union_v<T>) return Kind::union_type;
  else if constexpr (std::is_aggregate_v<T>) {
    if constexpr (field_count<T> > kMaxAggregateFields) return Kind::too_many_fields;
    else return Kind::aggregate;
  } else if constexpr (std::is_class_v<T> && std::is_empty_v<T> &&
                       std::is_default_constructible_v<T> && std::is_trivially_copyable_v<T>)
    return Kind::stateless;
  else if constexpr (is_lambda_name<T>()) return Kind::capturing_lambda;
  else return Kind::unknown;
}

template <class T>
inline constexpr Kind kind_v = kind_of<T>();

// ---------------------------------------------------------------------------
// Whether a type can cross at all

// How deep the checks below follow a type into its parts before trusting the
// rest: recursive types (a struct holding a vector of itself) must end.
inline constexpr int kTypeDepthCutoff = 6;

constexpr bool is_supported_kind(Kind k) { return k < Kind::reference; }

template <class T, int Depth = 0>
constexpr bool supported();

template <int Depth, class... T>
constexpr bool all_supported(TypeList<T...>) {
  return (supported<std::remove_cvref_t<T>, Depth>() && ...);
}

template <int Depth, template <class...> class L, class... E>
constexpr bool alternatives_supported(std::type_identity<L<E...>>) {
  return (supported<E, Depth>() && ...);
}

template <class T, int Depth>
constexpr bool supported() {
  constexpr Kind k = kind_v<T>;
  if constexpr (!is_supported_kind(k) || Depth > kTypeDepthCutoff) {
    return is_supported_kind(k);
  } else if constexpr (k == Kind::sequence || k == Kind::set || k == Kind::optional ||
                       k == Kind::array) {
    return supported<typename T::value_type, Depth + 1>();
  } else if constexpr (k == Kind::map) {
    return supported<typename T::key_type, Depth + 1>() &&
           supported<typename T::mapped_type, Depth + 1>();
  } else if constexpr (k == Kind::pair) {
    return supported<typename T::first_type, Depth + 1>() &&
           supported<typename T::second_type, Depth + 1>();
  } else if constexpr (k == Kind::tuple || k == Kind::variant) {
    return alternatives_supported<Depth + 1>(std::type_identity<T>{});
  } else if constexpr (k == Kind::aggregate) {
    return all_supported<Depth + 1>(field_types<T>{});
  } else if constexpr (k == Kind::custom) {
    return custom_parts_transferable<T>::value;
  } else {
    return true;
  }
}

// ---------------------------------------------------------------------------
// Raw-byte types: encoded as their object representation, with one memcpy
// for a whole contiguous range. Every bit pattern must be a valid value, and
// there may be no padding (it would carry uninitialised bytes).

template <class T>
constexpr bool is_bitwise();

template <class... F>
constexpr bool all_bitwise_without_padding(TypeList<F...>, std::size_t size) {
  return ((!std::is_reference_v<F> && !std::is_const_v<F> && is_bitwise<F>()) && ...) &&
         (sizeof(F) + ... + 0) == size;
}

template <class T>
constexpr bool is_bitwise() {
  constexpr Kind k = kind_v<T>;
  if constexpr (k == Kind::arithmetic) {
    return !std::is_same_v<T, long double>;  // 80-bit value in 16 bytes: padding
  } else if constexpr (k == Kind::enumeration) {
    // Not an enum over bool: only 0 and 1 are valid values of it.
    return !std::is_same_v<std::underlying_type_t<T>, bool>;
  } else if constexpr (k == Kind::array) {
    return is_bitwise<typename T::value_type>();
  } else if constexpr (k == Kind::duration) {
    return is_bitwise<typename T::rep>() && sizeof(T) == sizeof(typename T::rep);
  } else if constexpr (k == Kind::aggregate) {
    if constexpr (!std::is_trivially_copyable_v<T>) return false;
    else return all_bitwise_without_padding(field_types<T>{}, sizeof(T));
  } else {
    return false;
  }
}

template <class T>
inline constexpr bool is_bitwise_v = is_bitwise<T>();

// ---------------------------------------------------------------------------
// The fewest bytes an encoding of T takes. Containers check their claimed
// element count against it before allocating anything.

// Bytes of a function reference: build id length, at least one id byte, offset.
inline constexpr std::size_t kMinCodeRefSize = 1 + 1 + 8;
// Bytes of the length prefix before a custom-serialized value.
inline constexpr std::size_t kCustomLengthSize = 4;

template <class T>
constexpr std::size_t min_size();

template <class... F>
constexpr std::size_t sum_min_sizes(TypeList<F...>) {
  return (min_size<std::remove_cvref_t<F>>() + ... + 0);
}

template <class T>
constexpr std::size_t min_size() {
  constexpr Kind k = kind_v<T>;
  if constexpr (is_bitwise_v<T>) return sizeof(T);
  else if constexpr (k == Kind::boolean || k == Kind::optional) return 1;
  else if constexpr (k == Kind::arithmetic || k == Kind::enumeration) return sizeof(T);
  else if constexpr (k == Kind::function_pointer) return kMinCodeRefSize;
  else if constexpr (k == Kind::file_descriptor) return 4;
  else if constexpr (k == Kind::string || k == Kind::sequence || k == Kind::set || k == Kind::map)
    return 8;
  else if constexpr (k == Kind::array)
    return std::tuple_size_v<T> * min_size<typename T::value_type>();
  else if constexpr (k == Kind::pair)
    return min_size<typename T::first_type>() + min_size<typename T::second_type>();
  else if constexpr (k == Kind::tuple)
    return []<class... E>(std::type_identity<std::tuple<E...>>) {
      return (min_size<E>() + ... + 0);
    }(std::type_identity<T>{});
  else if constexpr (k == Kind::variant)
    return 1 + []<class... E>(std::type_identity<std::variant<E...>>) {
      return std::min({min_size<E>()...});
    }(std::type_identity<T>{});
  else if constexpr (k == Kind::duration) return min_size<typename T::rep>();
  else if constexpr (k == Kind::time_point) return min_size<typename T::duration>();
  else if constexpr (k == Kind::custom) return kCustomLengthSize;
  else if constexpr (k == Kind::aggregate) return sum_min_sizes(field_types<T>{});
  else return 0;
}

template <class T>
inline constexpr std::size_t min_size_v = min_size<T>();

// ---------------------------------------------------------------------------
// Fingerprints: a 64-bit hash of what the encoding of T means. Built-in types
// hash their structure under canonical names (so int and int32_t agree, and
// long and long long agree on Linux); user types hash their name too.

template <class T, int Depth = 0>
constexpr std::uint64_t fingerprint_of();

template <int Depth, class... F>
constexpr std::uint64_t hash_fields(std::uint64_t h, TypeList<F...>) {
  ((h = hash_combine(h, fingerprint_of<std::remove_cvref_t<F>, Depth + 1>())), ...);
  return h;
}

template <class T>
constexpr std::uint64_t arithmetic_fingerprint() {
  if constexpr (is_char_type<T>) return hash_all("char", sizeof(T));
  else if constexpr (std::is_floating_point_v<T>) return hash_all("float", sizeof(T));
  else if constexpr (std::is_signed_v<T>) return hash_all("int", sizeof(T));
  else return hash_all("uint", sizeof(T));
}

template <class T, int Depth>
constexpr std::uint64_t fingerprint_of() {
  constexpr Kind k = kind_v<T>;
  constexpr int next = Depth + 1;
  if constexpr (k == Kind::boolean) {
    return hash_text("bool");
  } else if constexpr (k == Kind::arithmetic) {
    return arithmetic_fingerprint<T>();
  } else if constexpr (k == Kind::enumeration) {
    return hash_all("enum", hash_text(type_name<T>()), fingerprint_of<std::underlying_type_t<T>>());
  } else if constexpr (k == Kind::function_pointer) {
    return hash_all("function pointer", hash_text(type_name<T>()));
  } else if constexpr (k == Kind::file_descriptor) {
    return hash_text("fd");
  } else if constexpr (k == Kind::string) {
    return hash_all("string", arithmetic_fingerprint<typename T::value_type>());
  } else if constexpr (k == Kind::sequence || k == Kind::set) {
    return hash_all(container_tag<T>(), fingerprint_of<typename T::value_type, next>());
  } else if constexpr (k == Kind::map) {
    return hash_all(container_tag<T>(), fingerprint_of<typename T::key_type, next>(),
                    fingerprint_of<typename T::mapped_type, next>());
  } else if constexpr (k == Kind::array) {
    return hash_all("array", std::tuple_size_v<T>, fingerprint_of<typename T::value_type, next>());
  } else if constexpr (k == Kind::pair) {
    return hash_all("pair", fingerprint_of<typename T::first_type, next>(),
                    fingerprint_of<typename T::second_type, next>());
  } else if constexpr (k == Kind::tuple || k == Kind::variant) {
    return []<template <class...> class L, class... E>(std::type_identity<L<E...>>) {
      return hash_all(k == Kind::tuple ? "tuple" : "variant", fingerprint_of<E, next>()...);
    }(std::type_identity<T>{});
  } else if constexpr (k == Kind::optional) {
    return hash_all("optional", fingerprint_of<typename T::value_type, next>());
  } else if constexpr (k == Kind::duration) {
    return hash_all("duration", fingerprint_of<typename T::rep, next>(), T::period::num,
                    T::period::den);
  } else if constexpr (k == Kind::time_point) {
    return hash_all("time_point", hash_text(type_name<typename T::clock>()),
                    fingerprint_of<typename T::duration, next>());
  } else if constexpr (k == Kind::aggregate) {
    std::uint64_t h = hash_all("struct", hash_text(type_name<T>()), sizeof(T), alignof(T));
    if constexpr (Depth > kTypeDepthCutoff) return h;  // a recursive type: its name decides
    else return hash_fields<Depth>(h, field_types<T>{});
  } else if constexpr (k == Kind::custom) {
    // Only the name and the size are known: two serialize() types of one name
    // (in two anonymous namespaces, say) and one size are not told apart.
    return hash_all("custom", hash_text(type_name<T>()), sizeof(T), alignof(T));
  } else if constexpr (k == Kind::stateless) {
    return hash_all("stateless", hash_text(type_name<T>()));
  } else {
    // Not encodable; still hashed, so that function signatures naming such
    // types (say, a pointer parameter) have fingerprints.
    return hash_all("opaque", hash_text(type_name<T>()));
  }
}

// A variable, so that it is always computed at compile time.
template <class T>
inline constexpr std::uint64_t fingerprint_v = fingerprint_of<T>();

// The fingerprint of a function signature R(Args...), parameter references
// and const included.
template <class T>
constexpr std::uint64_t parameter_fingerprint() {
  using V = std::remove_cvref_t<T>;
  return hash_all("param", fingerprint_of<V>(), std::is_lvalue_reference_v<T>,
                  std::is_rvalue_reference_v<T>, std::is_const_v<std::remove_reference_t<T>>);
}

template <class Signature>
struct signature_fingerprint;
template <class R, class... Args>
struct signature_fingerprint<R(Args...)> {
  static constexpr std::uint64_t value =
      hash_all("signature", parameter_fingerprint<R>(), parameter_fingerprint<Args>()...);
};

}  // namespace mproc::detail
