// Transferable functions: every kind of target calls the same before and
// after the trip, in a child forked before the function existed and in a
// fresh exec of this binary; references that do not fit are refused.

#include "mproc/function.hpp"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "os/io.hpp"
#include "os/modules.hpp"
#include "os/process.hpp"
#include "os/socket.hpp"
#include "support/child.hpp"
#include "support/expect.hpp"
#include "support/helpers.hpp"

namespace {

using mproc::Function;
using mproc::partial;

int add(int a, int b) { return a + b; }
long square(long x) { return x * x; }
long add_long(long a, long b) { return a + b; }
std::string repeat(const std::string& text, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += text;
  return out;
}

// A function object that is an aggregate: no code needed to send it.
struct Scale {
  double factor;
  double operator()(double x) const { return factor * x; }
};

// A function object with serialize().
class Affine {
 public:
  Affine() = default;
  Affine(long a, long b) : a_(a), b_(b) {}
  long operator()(long x) const { return a_ * x + b_; }
  template <class Archive>
  void serialize(Archive& archive) {
    archive(a_, b_);
  }

 private:
  long a_ = 0, b_ = 0;
};

template <class F>
F round_trip(const F& f) {
  auto message = mproc::encode(f);
  return mproc::decode<F>(message.bytes());
}

std::vector<std::byte> bytes_of(const mproc::EncodedMessage& message) {
  return {message.bytes().begin(), message.bytes().end()};
}

// Length-prefixed messages over a stream socket.
bool send_message(int fd, std::span<const std::byte> bytes) {
  std::uint64_t size = bytes.size();
  return !mproc::os::write_all(fd, std::as_bytes(std::span(&size, 1))) &&
         !mproc::os::write_all(fd, bytes);
}

// Returns false at end of file.
bool receive_message(int fd, std::vector<std::byte>& out) {
  std::uint64_t size = 0;
  auto got = mproc::os::read_full(fd, std::as_writable_bytes(std::span(&size, 1)));
  if (!got.ok() || got.value != sizeof(size)) return false;
  out.resize(size);
  got = mproc::os::read_full(fd, out);
  return got.ok() && got.value == size;
}

// ---------------------------------------------------------------------------
// In one process

TEST(FunctionInProcess, CallsEveryKindOfTarget) {
  Function<long(long)> plain = &square;
  Function<int(int)> lambda = [](int x) { return x - 1; };
  Function<double(double)> aggregate = Scale{2.5};
  Function<long(long)> custom = Affine(3, 4);
  Function<int(int)> bound = partial(add, 40);
  Function<std::string()> nested = partial(partial(repeat, std::string("ab")), 3);
  Function<long(int)> wrapped = Function<int(int)>(partial(add, 1));

  EXPECT_EQ(plain(9), 81);
  EXPECT_EQ(lambda(1), 0);
  EXPECT_DOUBLE_EQ(aggregate(2), 5);
  EXPECT_EQ(custom(10), 34);
  EXPECT_EQ(bound(2), 42);
  EXPECT_EQ(nested(), "ababab");
  EXPECT_EQ(wrapped(1), 2);
}

TEST(FunctionInProcess, EveryKindOfTargetSurvivesEncoding) {
  EXPECT_EQ(round_trip(Function<long(long)>(&square))(9), 81);
  EXPECT_EQ(round_trip(Function<int(int)>([](int x) { return x - 1; }))(1), 0);
  EXPECT_DOUBLE_EQ(round_trip(Function<double(double)>(Scale{2.5}))(2), 5);
  EXPECT_EQ(round_trip(Function<long(long)>(Affine(3, 4)))(10), 34);
  EXPECT_EQ(round_trip(Function<int(int)>(partial(add, 40)))(2), 42);
  EXPECT_EQ(round_trip(Function<std::string()>(partial(partial(repeat, std::string("ab")), 3)))(),
            "ababab");
  EXPECT_EQ(round_trip(partial(add, 5))(6), 11);  // a Partial is itself transferable
}

TEST(FunctionInProcess, EmptyFunctionThrowsBadFunctionCallAndTravels) {
  Function<void()> empty;
  EXPECT_FALSE(empty);
  EXPECT_THROW(empty(), std::bad_function_call);
  EXPECT_FALSE(round_trip(empty));
}

TEST(FunctionInProcess, PartialExposesFuncAndArgs) {
  auto p = partial(add, 7);
  EXPECT_EQ(p.func(), &add);
  EXPECT_EQ(std::get<0>(p.args()), 7);
}

TEST(FunctionInProcess, CopiesShareOneTarget) {
  Function<int(int)> f = partial(add, 1);
  Function<int(int)> g = f;
  EXPECT_EQ(g(1), 2);
  EXPECT_EQ(f(1), 2);
}

// Transferability is known at compile time; what fails says why (see
// tests/compile_fail for the messages).
static_assert(mproc::transferable<Function<int(int)>>);
static_assert(mproc::transferable<int (*)(int)>);
static_assert(mproc::transferable<decltype(partial(add, 1))>);
static_assert(mproc::transferable<decltype(partial(repeat, std::string()))>);
static_assert(!mproc::transferable<int*>);
static_assert(!mproc::transferable<std::function<int(int)>>);
inline int captured = 0;
static_assert(!mproc::transferable<decltype(partial([x = captured](int y) { return x + y; }, 1))>);

// ---------------------------------------------------------------------------
// Across processes

TEST(FunctionAcrossProcesses, PartialCreatedAfterForkRunsInTheChild) {
  auto sockets = mproc::os::socket_pair();
  ASSERT_TRUE(sockets.ok());
  int child_end = sockets.value.second.get();
  auto child = mproc::testing::ChildProcess::fork([child_end] {
    std::vector<std::byte> message;
    if (!receive_message(child_end, message)) return 2;
    auto f = mproc::decode<Function<std::string(int)>>(message);
    std::string result = f(2);
    return send_message(child_end, mproc::encode(result).bytes()) ? 0 : 3;
  });
  sockets.value.second.reset();

  // Made after the fork: the child's memory has never held this string.
  std::string made_now = "made after fork by pid " + std::to_string(mproc::os::current_pid()) + ";";
  Function<std::string(int)> f = partial(repeat, made_now);
  ASSERT_TRUE(send_message(sockets.value.first.get(), mproc::encode(f).bytes()));

  std::vector<std::byte> reply;
  ASSERT_TRUE(receive_message(sockets.value.first.get(), reply));
  EXPECT_EQ(mproc::decode<std::string>(reply), made_now + made_now);
  EXPECT_EQ(child.wait(), 0);
}

// The helper a fresh exec of this binary runs: decodes (function, argument)
// pairs from the socket, calls each and sends back (result, its pid).
MPROC_TEST_HELPER(call_functions) {
  int fd = std::atoi(args.at(0).c_str());
  std::vector<std::byte> message;
  while (receive_message(fd, message)) {
    auto [f, argument] = mproc::decode<std::pair<Function<long(long)>, long>>(message);
    auto reply = mproc::encode(std::pair<long, int>{f(argument), mproc::os::current_pid()});
    if (!send_message(fd, reply.bytes())) return 3;
  }
  return 0;
}

TEST(FunctionAcrossProcesses, FreshExecResolvesAndCallsReferences) {
  auto sockets = mproc::os::socket_pair();
  ASSERT_TRUE(sockets.ok());
  int child_end = sockets.value.second.get();
  auto child = mproc::testing::ChildProcess::spawn_helper("call_functions",
                                                          {std::to_string(child_end)}, {child_end});
  sockets.value.second.reset();
  int fd = sockets.value.first.get();

  std::vector<std::pair<Function<long(long)>, long>> calls = {
      {&square, 12},
      {partial(add_long, 1000), 24},
      {[](long x) { return -x; }, 7},
      {Affine(2, 1), 20},
  };
  std::vector<long> expected = {144, 1024, -7, 41};
  for (std::size_t i = 0; i < calls.size(); ++i) {
    ASSERT_TRUE(send_message(fd, mproc::encode(calls[i]).bytes()));
    std::vector<std::byte> reply;
    ASSERT_TRUE(receive_message(fd, reply)) << "call " << i;
    auto [result, pid] = mproc::decode<std::pair<long, int>>(reply);
    EXPECT_EQ(result, expected[i]) << "call " << i;
    EXPECT_EQ(pid, child.pid()) << "call " << i;
  }
  sockets.value.first.reset();  // end of file: the helper returns 0
  EXPECT_EQ(child.wait(), 0);
}

// ---------------------------------------------------------------------------
// References that must be refused

template <class T>
void expect_not_transferable(std::span<const std::byte> bytes, const char* needle) {
  mproc::testing::expect_throw_containing<mproc::NotTransferableError>(
      [&] { (void)mproc::decode<T>(bytes); }, needle);
}

TEST(FunctionReferences, ReferenceFromAnotherBinaryIsNotTransferable) {
  auto sockets = mproc::os::socket_pair();
  ASSERT_TRUE(sockets.ok());
  int child_end = sockets.value.second.get();
  auto child = mproc::testing::ChildProcess::spawn(MPROC_FOREIGN_FUNCTION_REF,
                                                   {std::to_string(child_end)}, {child_end});
  sockets.value.second.reset();
  std::vector<std::byte> function_message, pointer_message;
  ASSERT_TRUE(receive_message(sockets.value.first.get(), function_message));
  ASSERT_TRUE(receive_message(sockets.value.first.get(), pointer_message));
  EXPECT_EQ(child.wait(), 0);

  expect_not_transferable<Function<int(int)>>(function_message, "build id");
  expect_not_transferable<int (*)(int)>(pointer_message, "build id");
}

// Offsets of the fields of an encoded Function<Sig> of a stateless target:
// fingerprint (8), length (4), present (1), id size (1), id, offset (8).
struct ReferenceLayout {
  std::size_t id_size_at = 13;
  std::size_t id_at = 14;
  std::size_t offset_at;
};

ReferenceLayout layout_of(const std::vector<std::byte>& message) {
  ReferenceLayout layout;
  layout.offset_at = layout.id_at + std::to_integer<std::size_t>(message[layout.id_size_at]);
  return layout;
}

TEST(FunctionReferences, TamperedBuildIdIsNotTransferable) {
  auto message = bytes_of(mproc::encode(Function<int(int)>([](int x) { return x; })));
  ReferenceLayout layout = layout_of(message);
  message[layout.id_at] ^= std::byte{0xff};
  expect_not_transferable<Function<int(int)>>(message, "not loaded in this process");
}

std::uint64_t offset_in(const std::vector<std::byte>& message) {
  std::uint64_t offset = 0;
  std::memcpy(&offset, message.data() + layout_of(message).offset_at, sizeof(offset));
  return offset;
}

// Offsets near and far from a real descriptor: each is refused, or (when it
// happens to be another real int(int) function of this binary) decodes to
// that function, which encodes back to the very same reference.
TEST(FunctionReferences, TamperedOffsetsNeverJump) {
  auto original = bytes_of(mproc::encode(Function<int(int)>([](int x) { return x; })));
  std::size_t offset_at = layout_of(original).offset_at;
  std::uint64_t real_offset = offset_in(original);

  std::mt19937_64 rng(7);
  std::vector<std::uint64_t> offsets = {0, 1, real_offset + 8, real_offset - 8, real_offset + 1,
                                        ~std::uint64_t{0}, std::uint64_t{1} << 63};
  for (int i = 0; i < 2000; ++i) offsets.push_back(rng() % (real_offset * 2));
  for (std::int64_t delta = -64; delta <= 64; ++delta) {
    if (delta != 0) offsets.push_back(real_offset + static_cast<std::uint64_t>(delta));
  }
  int refused = 0;
  for (std::uint64_t offset : offsets) {
    auto message = original;
    std::memcpy(message.data() + offset_at, &offset, sizeof(offset));
    try {
      auto f = mproc::decode<Function<int(int)>>(message);
      EXPECT_EQ(offset_in(bytes_of(mproc::encode(f))), offset);
    } catch (const mproc::NotTransferableError&) {
      ++refused;
    } catch (const mproc::DecodeError&) {
      ++refused;  // a real descriptor of a target with state, and no state here
    }
  }
  EXPECT_GE(refused, static_cast<int>(offsets.size()) - 20);
}

TEST(FunctionReferences, DescriptorOfAnotherSignatureIsRefused) {
  auto ints = bytes_of(mproc::encode(Function<int(int)>([](int x) { return x; })));
  auto doubles = bytes_of(mproc::encode(Function<double(double)>([](double x) { return x; })));
  ReferenceLayout layout = layout_of(ints);
  ASSERT_EQ(ints.size(), doubles.size());
  // Point the int(int) message at the double(double) descriptor.
  std::memcpy(ints.data() + layout.offset_at, doubles.data() + layout.offset_at, 8);
  expect_not_transferable<Function<int(int)>>(ints, "another signature");
}

TEST(FunctionReferences, CodeReferenceOutsideExecutableCodeIsRefused) {
  auto message = bytes_of(mproc::encode(&square));
  // fingerprint (8), id size (1), id, offset (8)
  std::size_t offset_at = 9 + std::to_integer<std::size_t>(message[8]);
  for (std::uint64_t offset : {std::uint64_t{0}, ~std::uint64_t{0}, std::uint64_t{1} << 40}) {
    std::memcpy(message.data() + offset_at, &offset, sizeof(offset));
    expect_not_transferable<long (*)(long)>(message, "not code");
  }
}

TEST(FunctionReferences, ReferencesIntoAnUnloadedLibraryAreRefused) {
  void* plugin = dlopen(MPROC_TEST_PLUGIN, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(plugin, nullptr) << dlerror();
  auto encode_in_plugin =
      reinterpret_cast<void (*)(std::vector<std::byte>*)>(dlsym(plugin, "plugin_encode_function"));
  auto triple = reinterpret_cast<int (*)(int)>(dlsym(plugin, "plugin_triple"));
  ASSERT_TRUE(encode_in_plugin != nullptr && triple != nullptr);

  std::vector<std::byte> function_message;
  encode_in_plugin(&function_message);
  auto pointer_message = bytes_of(mproc::encode(triple));
  EXPECT_EQ(mproc::decode<Function<int(int)>>(function_message)(1), 1001);
  EXPECT_EQ(mproc::decode<int (*)(int)>(pointer_message)(3), 9);

  ASSERT_EQ(dlclose(plugin), 0);
  expect_not_transferable<Function<int(int)>>(function_message, "not loaded in this process");
  expect_not_transferable<int (*)(int)>(pointer_message, "not loaded in this process");
}

int twice(int x) { return 2 * x; }
int launch_missiles(const char* target) { return target != nullptr ? 1 : 0; }

// The offset of the plain function a Function<int(int)>(&f) message names:
// its last 8 bytes.
std::size_t plain_target_offset_at(const std::vector<std::byte>& message) { return message.size() - 8; }

TEST(FunctionReferences, PlainFunctionTargetMustBeAFunctionStart) {
  auto message = bytes_of(mproc::encode(Function<int(int)>(&twice)));
  std::size_t at = plain_target_offset_at(message);
  std::uint64_t offset;
  std::memcpy(&offset, message.data() + at, sizeof(offset));
  for (std::uint64_t delta : {1ull, 2ull, 4ull, 8ull}) {
    auto tampered = message;
    std::uint64_t inside = offset + delta;
    std::memcpy(tampered.data() + at, &inside, sizeof(inside));
    expect_not_transferable<Function<int(int)>>(tampered, "not the start of a function");
  }
  EXPECT_EQ(mproc::decode<Function<int(int)>>(message)(21), 42);
}

TEST(FunctionReferences, PlainFunctionPointersCanBeRefusedAltogether) {
  // A plain pointer's signature cannot be checked: a message naming another
  // function start (here one taking a const char*) is refused only when the
  // receiver turns plain pointers off.
  auto message = bytes_of(mproc::encode(Function<int(int)>(&twice)));
  std::size_t at = plain_target_offset_at(message);
  std::uint64_t offset;
  std::memcpy(&offset, message.data() + at, sizeof(offset));
  std::uint64_t other = offset + static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&launch_missiles) -
                                                           reinterpret_cast<std::uintptr_t>(&twice));
  std::memcpy(message.data() + at, &other, sizeof(other));
  mproc::DecodeLimits strict{.allow_function_pointers = false};
  mproc::testing::expect_throw_containing<mproc::NotTransferableError>(
      [&] { (void)mproc::decode<Function<int(int)>>(message, strict); }, "allow_function_pointers");

  // Lambdas, function objects and fn<&f> stay accepted: their signature is checked.
  auto lambda = bytes_of(mproc::encode(Function<int(int)>([](int x) { return x + 1; })));
  EXPECT_EQ(mproc::decode<Function<int(int)>>(lambda, strict)(1), 2);
  auto named = bytes_of(mproc::encode(Function<int(int)>(mproc::fn<&twice>)));
  EXPECT_EQ(mproc::decode<Function<int(int)>>(named, strict)(4), 8);
}

TEST(FunctionReferences, NamedFunctionObjectsTravelWithPartial) {
  Function<int()> f = partial(mproc::fn<&add>, 40, 2);
  EXPECT_EQ(round_trip(f)(), 42);
}

// Bytes that look like a descriptor of int(int), in writable memory.
alignas(16) unsigned char forged_descriptor[64];

TEST(FunctionReferences, DescriptorsInWritableMemoryAreRefused) {
  mproc::detail::FunctionDescriptor<int, int> fake{
      {{mproc::detail::kDescriptorMagic0, mproc::detail::kDescriptorMagic1},
       reinterpret_cast<const mproc::detail::DescriptorHeader*>(forged_descriptor),
       mproc::detail::signature_fingerprint<int(int)>::value},
      nullptr};
  std::memcpy(forged_descriptor, &fake, sizeof(fake));

  auto message = bytes_of(mproc::encode(Function<int(int)>([](int x) { return x; })));
  ReferenceLayout layout = layout_of(message);
  std::uint64_t real_offset = offset_in(message);
  // The forged bytes' offset in this module (the main executable).
  mproc::os::ModuleGeneration generation;
  std::uintptr_t base = mproc::os::loaded_modules(generation).front().base;
  std::uint64_t forged_offset = reinterpret_cast<std::uintptr_t>(forged_descriptor) - base;
  ASSERT_NE(forged_offset, real_offset);
  std::memcpy(message.data() + layout.offset_at, &forged_offset, sizeof(forged_offset));
  expect_not_transferable<Function<int(int)>>(message, "not a function descriptor");
}

TEST(FunctionReferences, NullFunctionPointerIsNotTransferable) {
  long (*null)(long) = nullptr;
  EXPECT_THROW(mproc::encode(null), mproc::NotTransferableError);
}

}  // namespace
