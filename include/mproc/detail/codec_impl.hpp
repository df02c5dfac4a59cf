// The templates behind Encoder::write and Decoder::read, one branch per kind
// of type (see codec_traits.hpp), and the compile errors for what cannot cross.
//
// No function named serialize, save or load may be declared in namespace mproc
// or mproc::detail: it would hide the user's free functions from the
// argument-dependent calls below.

#pragma once

#include <limits>
#include <tuple>
#include <variant>

namespace mproc::detail {

template <class... F>
constexpr bool has_immutable_field(TypeList<F...>) {
  return ((std::is_reference_v<F> || std::is_const_v<F>) || ...);
}

// The fewest bytes one element of container T takes.
template <class T>
constexpr std::size_t min_element_size() {
  if constexpr (kind_v<T> == Kind::map) {
    return min_size_v<typename T::key_type> + min_size_v<typename T::mapped_type>;
  } else {
    return min_size_v<typename T::value_type>;
  }
}

// The compile errors, in words, for each kind of type that cannot cross.
template <class T>
constexpr void check_transferable() {
  constexpr Kind k = kind_v<T>;
  static_assert(k != Kind::raw_pointer,
                "mproc: a raw pointer cannot cross a process boundary: the address means nothing "
                "in another process. Send the value it points to (or a std::optional or "
                "std::vector of it).");
  static_assert(k != Kind::capturing_lambda,
                "mproc: a capturing lambda cannot cross a process boundary: its captures are "
                "hidden from the codec. Bind arguments with mproc::partial(f, args...), or write "
                "a struct with the captured values as public fields and an operator().");
  static_assert(k != Kind::std_function,
                "mproc: std::function cannot cross a process boundary: it hides what it calls. "
                "Use mproc::Function<Signature>, which holds a plain function, a capture-less "
                "lambda or a serializable function object.");
  static_assert(k != Kind::smart_pointer,
                "mproc: smart pointers cannot cross a process boundary: the pointee would be "
                "copied and the sharing lost. Send the value (or a std::optional of it).");
  static_assert(k != Kind::view,
                "mproc: views (std::string_view, std::span, std::reference_wrapper) do not own "
                "what they show and cannot be decoded. Send a std::string or std::vector.");
  static_assert(k != Kind::union_type,
                "mproc: a union cannot cross a process boundary: which member is active is "
                "unknown. Use std::variant.");
  static_assert(k != Kind::c_array,
                "mproc: C arrays cannot be sent; use std::array or std::vector.");
  static_assert(k != Kind::unfixed_enum,
                "mproc: an enum without a fixed underlying type has a range the decoder cannot "
                "check. Declare it with one: enum Color : int { ... }.");
  static_assert(k != Kind::reference,
                "mproc: references cannot be decoded; send and receive values.");
  static_assert(k != Kind::cv_qualified,
                "mproc: const or volatile values cannot be decoded into; drop the qualifier.");
  static_assert(k != Kind::too_many_fields,
                "mproc: this aggregate has more fields than the codec reflects (64); give it a "
                "serialize(Archive&) function.");
  static_assert(k != Kind::unknown,
                "mproc: this type cannot cross a process boundary: it is not a type the codec "
                "knows, not an aggregate, and has no serialize(Archive&) (or save/load) member "
                "or free function. Give it one: template <class Archive> void "
                "serialize(Archive& ar) { ar(field1, field2); }");
  if constexpr (k == Kind::aggregate) {
    static_assert(!has_immutable_field(field_types<T>{}),
                  "mproc: an aggregate with a const or reference field cannot be decoded, which "
                  "assigns every field. Make the fields plain values, or give the type "
                  "serialize().");
  }
  if constexpr (k == Kind::sequence || k == Kind::set || k == Kind::map) {
    static_assert(min_element_size<T>() > 0,
                  "mproc: containers of types that encode to nothing (empty structs, "
                  "std::monostate) are not supported: their length could not be checked.");
  }
}

template <class T, std::size_t... I>
void read_tuple(Decoder& d, T& tuple, std::index_sequence<I...>) {
  (d.read(std::get<I>(tuple)), ...);
}

// Emplaces alternative `index` of a variant and reads its value.
template <class V, std::size_t... I>
void read_variant_alternative(Decoder& d, V& v, std::size_t index, std::index_sequence<I...>) {
  using Reader = void (*)(Decoder&, V&);
  static constexpr Reader readers[] = {+[](Decoder& dec, V& var) {
    dec.read(var.template emplace<I>());
  }...};
  readers[index](d, v);
}

// The memory one element of container T takes, as charged against the
// decoder's memory budget: the element, plus two pointers a node for
// node-based containers.
template <class T>
constexpr std::size_t element_footprint() {
  constexpr bool contiguous = is_specialization_of<T, std::vector> || is_specialization_of<T, std::deque>;
  return sizeof(typename T::value_type) + (contiguous ? 0 : 2 * sizeof(void*));
}

template <class T>
void reserve_bounded(T& container, std::size_t count, std::size_t input_left) {
  // Reserve no more than the input could fill, so a hostile count cannot make
  // us allocate beyond the message's size; growth covers the rest.
  using E = typename T::value_type;
  container.reserve(std::min(count, input_left / sizeof(E)));
}

}  // namespace mproc::detail

namespace mproc {

struct Encoder::DepthGuard {
  explicit DepthGuard(Encoder& e) : encoder(e) { encoder.enter(); }
  ~DepthGuard() { --encoder.depth_; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;
  Encoder& encoder;
};

struct Decoder::DepthGuard {
  explicit DepthGuard(Decoder& d) : decoder(d) { decoder.enter(); }
  ~DepthGuard() { --decoder.depth_; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;
  Decoder& decoder;
};

template <class T>
std::span<const std::byte> Encoder::encode(const T& value) {
  clear();
  try {
    write(type_fingerprint<T>());
    write(value);
  } catch (...) {
    clear();
    throw;
  }
  return bytes();
}

template <class T>
void Encoder::write(const T& value) {
  using detail::Kind;
  constexpr Kind k = detail::kind_v<T>;
  detail::check_transferable<T>();
  if constexpr (std::is_same_v<T, long double>) {
    write_long_double(value);
  } else if constexpr (detail::is_bitwise_v<T> || k == Kind::arithmetic) {
    std::memcpy(reserve(sizeof(T)), &value, sizeof(T));
  } else if constexpr (k == Kind::boolean) {
    write_u8(value ? 1 : 0);
  } else if constexpr (k == Kind::enumeration) {
    write(static_cast<std::underlying_type_t<T>>(value));
  } else if constexpr (k == Kind::function_pointer) {
    detail::write_function_address(*this, reinterpret_cast<const void*>(value));
  } else if constexpr (k == Kind::file_descriptor) {
    write_fd(value.get());
  } else if constexpr (k == Kind::string) {
    using C = typename T::value_type;
    write_count(value.size());
    write_block(value.data(), value.size() * sizeof(C), alignof(C));
  } else if constexpr (k == Kind::sequence) {
    write_sequence(value);
  } else if constexpr (k == Kind::array) {
    for (const auto& element : value) write(element);
  } else if constexpr (k == Kind::set) {
    write_count(value.size());
    for (const auto& element : value) write(element);
  } else if constexpr (k == Kind::map) {
    write_count(value.size());
    for (const auto& [key, mapped] : value) {
      write(key);
      write(mapped);
    }
  } else if constexpr (k == Kind::pair) {
    write(value.first);
    write(value.second);
  } else if constexpr (k == Kind::tuple) {
    std::apply([&](const auto&... element) { (write(element), ...); }, value);
  } else if constexpr (k == Kind::optional) {
    write_u8(value.has_value() ? 1 : 0);
    if (value.has_value()) write(*value);
  } else if constexpr (k == Kind::variant) {
    static_assert(std::variant_size_v<T> < 256, "mproc: a variant may have at most 255 alternatives");
    if (value.valueless_by_exception()) throw EncodeError("mproc: a valueless variant cannot be encoded");
    write_u8(static_cast<std::uint8_t>(value.index()));
    std::visit([&](const auto& v) { write(v); }, value);
  } else if constexpr (k == Kind::duration) {
    write(value.count());
  } else if constexpr (k == Kind::time_point) {
    write(value.time_since_epoch());
  } else if constexpr (k == Kind::custom) {
    write_custom(value);
  } else if constexpr (k == Kind::aggregate) {
    DepthGuard guard(*this);
    detail::visit_fields(const_cast<T&>(value), [&](const auto&... field) { (write(field), ...); });
  } else if constexpr (k == Kind::stateless) {
    // Nothing to say: the type alone defines it.
  }
}

template <class T>
void Encoder::write_sequence(const T& sequence) {
  using E = typename T::value_type;
  write_count(sequence.size());
  if constexpr (detail::is_bitwise_v<E> && detail::is_specialization_of<T, std::vector>) {
    write_block(sequence.data(), sequence.size() * sizeof(E), alignof(E));
  } else {
    for (const auto& element : sequence) write(static_cast<const E&>(element));
  }
}

template <class T>
void Encoder::write_custom(const T& value) {
  DepthGuard guard(*this);
  std::size_t length_at = offset();
  reserve(detail::kCustomLengthSize);
  T& mutable_value = const_cast<T&>(value);  // serialize() is one non-const function for both ways
  if constexpr (detail::member_serialize<T>) {
    access::serialize(mutable_value, *this);
  } else if constexpr (detail::member_save_load<T>) {
    access::save(value, *this);
  } else if constexpr (detail::free_serialize<T>) {
    serialize(*this, mutable_value);
  } else {
    save(*this, value);
  }
  patch_length(length_at, offset() - length_at - detail::kCustomLengthSize);
}

template <class T>
T Decoder::decode() {
  detail::check_transferable<T>();
  static_assert(std::is_default_constructible_v<T> || !detail::is_supported_kind(detail::kind_v<T>),
                "mproc: decode<T> needs T to be default-constructible");
  type_name_ = detail::type_name<T>();
  expect_fingerprint(type_fingerprint<T>());
  T value{};
  read(value);
  expect_end();
  return value;
}

template <class T>
void Decoder::read(T& value) {
  using detail::Kind;
  constexpr Kind k = detail::kind_v<T>;
  detail::check_transferable<T>();
  if constexpr (detail::is_bitwise_v<T> || k == Kind::arithmetic) {
    std::memcpy(&value, take_bytes(sizeof(T)), sizeof(T));
  } else if constexpr (k == Kind::boolean) {
    value = read_flag("bool");
  } else if constexpr (k == Kind::enumeration) {
    std::underlying_type_t<T> underlying{};
    read(underlying);
    value = static_cast<T>(underlying);
  } else if constexpr (k == Kind::function_pointer) {
    value = reinterpret_cast<T>(const_cast<void*>(detail::read_function_address(*this)));
  } else if constexpr (k == Kind::file_descriptor) {
    value = take_fd();
  } else if constexpr (k == Kind::string) {
    using C = typename T::value_type;
    std::uint64_t n = 0;
    read(n);
    const std::byte* chars = read_block(n, sizeof(C), alignof(C));
    charge_memory(static_cast<std::size_t>(n) * sizeof(C));
    if (reinterpret_cast<std::uintptr_t>(chars) % alignof(C) == 0) {
      value.assign(reinterpret_cast<const C*>(chars), static_cast<std::size_t>(n));
    } else {
      value.resize(static_cast<std::size_t>(n));
      std::memcpy(value.data(), chars, value.size() * sizeof(C));
    }
  } else if constexpr (k == Kind::sequence) {
    read_sequence(value);
  } else if constexpr (k == Kind::array) {
    for (auto& element : value) read(element);
  } else if constexpr (k == Kind::set) {
    read_set(value);
  } else if constexpr (k == Kind::map) {
    read_map(value);
  } else if constexpr (k == Kind::pair) {
    read(value.first);
    read(value.second);
  } else if constexpr (k == Kind::tuple) {
    detail::read_tuple(*this, value, std::make_index_sequence<std::tuple_size_v<T>>{});
  } else if constexpr (k == Kind::optional) {
    if (read_flag("optional")) {
      read(value.emplace());
    } else {
      value.reset();
    }
  } else if constexpr (k == Kind::variant) {
    read_variant(value);
  } else if constexpr (k == Kind::duration) {
    typename T::rep count{};
    read(count);
    value = T(count);
  } else if constexpr (k == Kind::time_point) {
    typename T::duration since_epoch{};
    read(since_epoch);
    value = T(since_epoch);
  } else if constexpr (k == Kind::custom) {
    read_custom(value);
  } else if constexpr (k == Kind::aggregate) {
    DepthGuard guard(*this);
    detail::visit_fields(value, [&](auto&... field) { (read(field), ...); });
  } else if constexpr (k == Kind::stateless) {
    // Nothing was sent.
  }
}

template <class T>
void Decoder::read_sequence(T& sequence) {
  using E = typename T::value_type;
  if constexpr (detail::is_bitwise_v<E> && detail::is_specialization_of<T, std::vector>) {
    std::uint64_t count = 0;
    read(count);
    const std::byte* bytes = read_block(count, sizeof(E), alignof(E));
    auto n = static_cast<std::size_t>(count);
    charge_memory(n * sizeof(E));
    if (reinterpret_cast<std::uintptr_t>(bytes) % alignof(E) == 0) {
      // One pass: allocate and copy, without zero-filling first.
      const E* first = reinterpret_cast<const E*>(bytes);
      sequence.assign(first, first + n);
    } else {
      sequence.resize(n);
      if (n != 0) std::memcpy(sequence.data(), bytes, n * sizeof(E));
    }
  } else if constexpr (std::is_same_v<E, bool>) {
    std::size_t n = read_count(1);
    charge_memory(n);
    sequence.clear();
    if constexpr (detail::is_specialization_of<T, std::vector>) {
      detail::reserve_bounded(sequence, n, remaining());
    }
    for (std::size_t i = 0; i < n; ++i) sequence.push_back(read_flag("bool"));
  } else {
    std::size_t n = read_count(detail::min_size_v<E>);
    sequence.clear();
    if constexpr (detail::is_specialization_of<T, std::vector>) {
      detail::reserve_bounded(sequence, n, remaining());
    }
    for (std::size_t i = 0; i < n; ++i) {
      charge_memory(detail::element_footprint<T>());
      read(sequence.emplace_back());
    }
  }
}

template <class T>
void Decoder::read_set(T& set) {
  using K = typename T::value_type;
  std::size_t n = read_count(detail::min_size_v<K>);
  set.clear();
  for (std::size_t i = 0; i < n; ++i) {
    charge_memory(detail::element_footprint<T>());
    K key{};
    read(key);
    std::size_t before = set.size();
    set.insert(std::move(key));
    if constexpr (!detail::allows_duplicate_keys<T>) {
      if (set.size() == before) fail("duplicate key in a set");
    }
  }
}

template <class T>
void Decoder::read_map(T& map) {
  using K = typename T::key_type;
  std::size_t n = read_count(detail::min_element_size<T>());
  map.clear();
  for (std::size_t i = 0; i < n; ++i) {
    charge_memory(detail::element_footprint<T>());
    K key{};
    read(key);
    // The value is read in place, in the map's node: a value type that is
    // large (or recursive) never sits on the stack.
    typename T::mapped_type* mapped;
    if constexpr (detail::allows_duplicate_keys<T>) {
      mapped = &map.emplace(std::piecewise_construct, std::forward_as_tuple(std::move(key)),
                            std::forward_as_tuple())->second;
    } else {
      auto [at, inserted] = map.try_emplace(std::move(key));
      if (!inserted) fail("duplicate key in a map");
      mapped = &at->second;
    }
    read(*mapped);
  }
}

template <class T>
void Decoder::read_variant(T& variant) {
  std::size_t index = read_u8();
  if (index >= std::variant_size_v<T>) {
    fail("variant index " + std::to_string(index) + " out of range (" +
         std::to_string(std::variant_size_v<T>) + " alternatives)");
  }
  detail::read_variant_alternative(*this, variant, index,
                                   std::make_index_sequence<std::variant_size_v<T>>{});
}

template <class T>
void Decoder::read_custom(T& value) {
  DepthGuard guard(*this);
  std::uint32_t length = 0;
  read(length);
  if (length > remaining()) fail_truncated(length);
  // The value may read only its own bytes, and must read all of them: a
  // save/load pair that disagrees is caught here, not as garbage later.
  const std::byte* outer_end = end_;
  end_ = cur_ + length;
  if constexpr (detail::member_serialize<T>) {
    access::serialize(value, *this);
  } else if constexpr (detail::member_save_load<T>) {
    access::load(value, *this);
  } else if constexpr (detail::free_serialize<T>) {
    serialize(*this, value);
  } else {
    load(*this, value);
  }
  if (cur_ != end_) {
    fail("a serialize()/load() of " + std::string(detail::type_name<T>()) + " read " +
         std::to_string(length - remaining()) + " of its " + std::to_string(length) + " bytes");
  }
  end_ = outer_end;
}

}  // namespace mproc
