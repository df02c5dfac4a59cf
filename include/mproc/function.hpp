// mproc/function.hpp
//
// Functions that cross process boundaries, the way pickle sends a function by
// its qualified name: by reference to code both processes have.
//
// A Function<R(Args...)> holds one of
//   * a plain function (or a capture-less lambda turned into one with +),
//     sent as (module build id, offset in the module);
//   * a capture-less lambda, or any serializable function object (an
//     aggregate or a type with serialize()), sent as a reference to the
//     code that rebuilds and calls that type, plus the object's encoding;
//   * mproc::partial(f, args...), one such function object.
// The receiver finds the module with the same build id in its own address
// space: this works in a fork, a fresh exec of the same binary, and any
// process that loaded the same library build. A reference from a different
// binary is a NotTransferableError, never a jump into the unknown.
//
// The receiver calls only code that was compiled as a transferable function
// of the expected signature: a reference to anything else is refused.
//
// Example:
//
//   int add(int a, int b) { return a + b; }
//
//   mproc::Function<int(int)> add2 = mproc::partial(add, 2);
//   auto message = mproc::encode(add2);
//   auto f = mproc::decode<mproc::Function<int(int)>>(message.bytes());
//   f(40);  // 42, in whichever process decoded it

#pragma once

#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "mproc/codec.hpp"

namespace mproc {

template <class Signature>
class Function;

// Partial<F, Bound...>
//
// A function object that calls F with the bound arguments first, then those
// it is called with: Python's functools.partial. Sendable when F and every
// bound argument are. Made by mproc::partial().
template <class F, class... Bound>
class Partial {
 public:
  Partial() = default;
  explicit Partial(F target, Bound... bound) : func_(std::move(target)), args_(std::move(bound)...) {}

  // Partial::operator()
  //
  // Calls func(bound..., rest...), the bound arguments as const lvalues.
  template <class... Rest>
    requires std::is_invocable_v<const F&, const Bound&..., Rest...>
  decltype(auto) operator()(Rest&&... rest) const {
    return std::apply(
        [&](const Bound&... bound) -> decltype(auto) {
          return std::invoke(func_, bound..., std::forward<Rest>(rest)...);
        },
        args_);
  }

  // Partial::func(), Partial::args()
  //
  // The wrapped function and the bound arguments, as Python's partial.func
  // and partial.args.
  const F& func() const noexcept { return func_; }
  const std::tuple<Bound...>& args() const noexcept { return args_; }

  template <class Archive>
  void serialize(Archive& archive) {
    archive(func_, args_);
  }

 private:
  F func_{};
  std::tuple<Bound...> args_;
};

// Fn<F>, fn<F>
//
// A named function as a stateless function object: mproc::fn<&square>.
// Unlike a plain function pointer, it travels as a reference checked against
// its signature, needs no symbol table (a stripped binary is fine), and is
// accepted when DecodeLimits::allow_function_pointers is off.
template <auto F>
struct Fn {
  template <class... Args>
    requires std::is_invocable_v<decltype(F), Args...>
  decltype(auto) operator()(Args&&... args) const {
    return std::invoke(F, std::forward<Args>(args)...);
  }
};
template <auto F>
inline constexpr Fn<F> fn{};

// partial()
//
// Binds the first arguments of `func`: partial(f, a, b)(c) calls f(a, b, c).
// The function and arguments are stored by value (decayed).
template <class F, class... Args>
Partial<std::decay_t<F>, std::decay_t<Args>...> partial(F&& func, Args&&... args) {
  return Partial<std::decay_t<F>, std::decay_t<Args>...>(std::forward<F>(func),
                                                         std::forward<Args>(args)...);
}

namespace detail {

template <class R, class... Args>
struct Callable {
  virtual ~Callable() = default;
  virtual R call(Args&&... args) const = 0;
  virtual void save_to(Encoder& encoder) const = 0;
};

template <class R, class... Args>
using CallableLoader = std::shared_ptr<const Callable<R, Args...>> (*)(Decoder&);

// What a function reference points at: the header the receiver checks, and
// the code that decodes the function object's state. Standard-layout with the
// header first, so a checked header pointer converts back to it.
template <class R, class... Args>
struct FunctionDescriptor {
  DescriptorHeader header;
  CallableLoader<R, Args...> load;
};

template <class F, class R, class... Args>
struct CallableFor;

// One descriptor per (function object type, signature) used in the program,
// emitted wherever that pair is instantiated.
template <class F, class R, class... Args>
inline constexpr FunctionDescriptor<R, Args...> function_descriptor{
    {{kDescriptorMagic0, kDescriptorMagic1},
     &function_descriptor<F, R, Args...>.header,
     signature_fingerprint<R(Args...)>::value},
    &CallableFor<F, R, Args...>::load};

template <class F, class R, class... Args>
struct CallableFor final : Callable<R, Args...> {
  F target;

  CallableFor() = default;
  explicit CallableFor(F f) : target(std::move(f)) {}

  R call(Args&&... args) const override {
    if constexpr (std::is_void_v<R>) {
      std::invoke(target, std::forward<Args>(args)...);
    } else {
      return std::invoke(target, std::forward<Args>(args)...);
    }
  }

  void save_to(Encoder& encoder) const override {
    write_descriptor(encoder, &function_descriptor<F, R, Args...>.header);
    encoder.write(target);
  }

  static std::shared_ptr<const Callable<R, Args...>> load(Decoder& decoder) {
    auto callable = std::make_shared<CallableFor>();
    decoder.read(callable->target);
    return callable;
  }
};

template <class T>
inline constexpr bool is_partial = false;
template <class F, class... Bound>
inline constexpr bool is_partial<Partial<F, Bound...>> = true;

// The reason, in words, why a type (or a part of a Partial) cannot cross.
template <class T>
constexpr void check_target_part() {
  if constexpr (is_partial<T>) {
    []<class F, class... Bound>(std::type_identity<Partial<F, Bound...>>) {
      check_target_part<F>();
      (check_target_part<Bound>(), ...);
    }(std::type_identity<T>{});
  } else {
    check_transferable<T>();
  }
}

// Whether F can be the target of a Function<R(Args...)>.
template <class F, class R, class... Args>
inline constexpr bool valid_function_target = supported<F>() && std::is_default_constructible_v<F> &&
                                              std::is_invocable_r_v<R, const F&, Args...>;

// The reason, in words, why F cannot be the target of a Function<R(Args...)>.
template <class F, class R, class... Args>
constexpr void check_function_target() {
  check_target_part<F>();
  if constexpr (!supported<F>() && is_supported_kind(kind_v<F>) && !is_partial<F>) {
    static_assert(supported<F>(),
                  "mproc::Function: a field of the target cannot cross a process boundary");
  } else if constexpr (supported<F>()) {
    static_assert(std::is_default_constructible_v<F>,
                  "mproc::Function: the target's type must be default-constructible so that the "
                  "receiver can rebuild it");
    static_assert(std::is_invocable_r_v<R, const F&, Args...>,
                  "mproc::Function: the target cannot be called with these arguments, or its "
                  "result does not convert to the declared result type");
  }
}

}  // namespace detail

// Function<R(Args...)>
//
// A callable that can be sent to another process and called there. Copies
// share one immutable target, so copying is cheap. An empty Function (default
// constructed) throws std::bad_function_call when called, and can be sent.
//
// The target must be callable as const: what it would change could not be
// seen by the sender anyway.
template <class R, class... Args>
class Function<R(Args...)> {
 public:
  using result_type = R;

  Function() noexcept = default;
  Function(std::nullptr_t) noexcept {}

  // Wraps `target`. A target that cannot cross is a compile error saying why.
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, Function>)
  Function(F&& target) {  // NOLINT: implicit, as std::function's
    using Target = std::decay_t<F>;
    detail::check_function_target<Target, R, Args...>();
    if constexpr (detail::valid_function_target<Target, R, Args...>) {
      callable_ = std::make_shared<const detail::CallableFor<Target, R, Args...>>(
          Target(std::forward<F>(target)));
    }
  }

  // Function::operator()
  //
  // Calls the target.
  R operator()(Args... args) const {
    if (!callable_) throw std::bad_function_call();
    return callable_->call(std::forward<Args>(args)...);
  }

  // Function::operator bool
  //
  // Whether there is a target.
  explicit operator bool() const noexcept { return static_cast<bool>(callable_); }

  // Encoding, for the codec: whether there is a target, then the target.
  void save(Encoder& encoder) const {
    encoder.write(static_cast<bool>(callable_));
    if (callable_) callable_->save_to(encoder);
  }
  void load(Decoder& decoder) {
    bool present = false;
    decoder.read(present);
    callable_.reset();
    if (!present) return;
    const detail::DescriptorHeader* header =
        detail::read_descriptor(decoder, detail::signature_fingerprint<R(Args...)>::value);
    // The header was checked to be the first member of a descriptor of this signature.
    auto* descriptor = reinterpret_cast<const detail::FunctionDescriptor<R, Args...>*>(header);
    callable_ = descriptor->load(decoder);
  }

 private:
  std::shared_ptr<const detail::Callable<R, Args...>> callable_;
};

namespace detail {

// A Partial can cross exactly when its function and bound arguments can.
template <class F, class... Bound>
struct custom_parts_transferable<Partial<F, Bound...>>
    : std::bool_constant<supported<F, 1>() && (supported<Bound, 1>() && ...)> {};

}  // namespace detail

}  // namespace mproc
