// The codec: every supported type round-trips, and every kind of bad input
// is a DecodeError that allocates nothing beyond the input's size.

#include "mproc/codec.hpp"

#include <gtest/gtest.h>
#include <pthread.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <limits>
#include <list>
#include <map>
#include <new>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "os/io.hpp"
#include "os/socket.hpp"
#include "support/expect.hpp"

// ---------------------------------------------------------------------------
// Allocation accounting: the global operator new of this test binary counts
// what is allocated while an AllocationProbe is alive.

namespace {

std::atomic<bool> g_tracking{false};
std::atomic<std::size_t> g_largest{0};
std::atomic<std::size_t> g_total{0};
std::atomic<std::size_t> g_count{0};

void* tracked_allocate(std::size_t size) {
  if (g_tracking.load(std::memory_order_relaxed)) {
    g_count.fetch_add(1, std::memory_order_relaxed);
    g_total.fetch_add(size, std::memory_order_relaxed);
    std::size_t seen = g_largest.load(std::memory_order_relaxed);
    while (size > seen && !g_largest.compare_exchange_weak(seen, size)) {
    }
  }
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

class AllocationProbe {
 public:
  AllocationProbe() {
    g_largest = 0;
    g_total = 0;
    g_count = 0;
    g_tracking = true;
  }
  ~AllocationProbe() { g_tracking = false; }
  std::size_t largest() const { return g_largest; }
  std::size_t total() const { return g_total; }
  std::size_t count() const { return g_count; }
};

}  // namespace

void* operator new(std::size_t size) { return tracked_allocate(size); }
void* operator new[](std::size_t size) { return tracked_allocate(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

// ---------------------------------------------------------------------------
// Types under test

namespace {

enum class Color : std::uint8_t { red, green, blue };
enum Level : int { low = -1, high = 1 };

struct Point {
  double x, y;
  bool operator==(const Point&) const = default;
};

struct Order {
  std::int64_t id;
  std::string customer;
  double price;
  std::int32_t quantity;
  bool urgent;
  bool operator==(const Order&) const = default;
};

struct Nested {
  Point origin;
  std::vector<Point> path;
  std::optional<Order> order;
  std::map<std::string, std::vector<int>> tags;
  std::variant<std::monostate, int, std::string> note;
  Color color;
  bool operator==(const Nested&) const = default;
};

struct Empty {
  bool operator==(const Empty&) const = default;
};

struct Tree {
  int value = 0;
  std::vector<Tree> children;
  bool operator==(const Tree&) const = default;
};

enum class Toggle : bool { off, on };

// Elements that are one byte on the wire and 64 KiB in memory.
struct Expanding {
  std::optional<std::array<char, 65536>> payload;
};

// A recursive type whose nodes are large.
struct BigNode {
  std::optional<std::array<char, 16384>> pad;
  std::map<int, BigNode> children;
};

// Private members, serialized through a private member function.
class Account {
 public:
  Account() = default;
  Account(std::string owner, long balance) : owner_(std::move(owner)), balance_(balance) {}
  bool operator==(const Account&) const = default;

 private:
  friend struct mproc::access;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(owner_, balance_);
  }
  std::string owner_;
  long balance_ = 0;
};

// save/load split: `doubled` is derived on load, never sent.
struct Derived {
  int stored = 0;
  int doubled = 0;
  template <class Archive>
  void save(Archive& archive) const {
    archive(stored);
  }
  template <class Archive>
  void load(Archive& archive) {
    archive(stored);
    doubled = stored * 2;
  }
};

// A type whose load reads less than its save wrote: a bug the codec catches.
struct Lopsided {
  int a = 0, b = 0;
  template <class Archive>
  void save(Archive& archive) const {
    archive(a, b);
  }
  template <class Archive>
  void load(Archive& archive) {
    archive(a);
  }
};

}  // namespace

namespace thirdparty {

// Not an aggregate, no members to call: free save/load, found by ADL.
class Opaque {
 public:
  Opaque() = default;
  explicit Opaque(int v) : v_(v) {}
  int value() const { return v_; }
  void set(int v) { v_ = v; }

 private:
  int v_ = 0;
};

template <class Archive>
void save(Archive& archive, const Opaque& o) {
  archive(o.value());
}
template <class Archive>
void load(Archive& archive, Opaque& o) {
  int v = 0;
  archive(v);
  o.set(v);
}

// A free serialize in cereal's `&` style.
struct Legacy {
  Legacy() {}  // user-provided: not an aggregate
  int a = 0;
  std::string b;
};
template <class Archive>
void serialize(Archive& archive, Legacy& l) {
  archive & l.a & l.b;
}

}  // namespace thirdparty

namespace {

template <class T>
T round_trip(const T& value) {
  mproc::EncodedMessage message = mproc::encode(value);
  return mproc::decode<T>(message.bytes());
}

template <class T>
void expect_round_trip(const T& value) {
  EXPECT_EQ(round_trip(value), value);
}

std::vector<std::byte> bytes_of(const mproc::EncodedMessage& message) {
  auto b = message.bytes();
  return {b.begin(), b.end()};
}

std::vector<std::byte> bytes_of_span(std::span<const std::byte> b) { return {b.begin(), b.end()}; }

// Builds raw messages by hand, for inputs no encoder would produce.
class Raw {
 public:
  template <class T>
  Raw& fingerprint() {
    return put(mproc::type_fingerprint<T>());
  }
  template <class T>
  Raw& put(T value) {
    const auto* p = reinterpret_cast<const std::byte*>(&value);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
    return *this;
  }
  Raw& put_text(std::string_view text) {
    for (char c : text) bytes_.push_back(static_cast<std::byte>(c));
    return *this;
  }
  std::span<const std::byte> span() const { return bytes_; }
  std::size_t size() const { return bytes_.size(); }

 private:
  std::vector<std::byte> bytes_;
};

Nested sample_nested() {
  return Nested{{1.5, -2.5},
                {{0, 0}, {1, 1}, {2, 4}},
                Order{7, "Grace Hopper", 99.5, 3, true},
                {{"primes", {2, 3, 5, 7}}, {"empty", {}}},
                std::string("a note"),
                Color::blue};
}

// ---------------------------------------------------------------------------
// Round trips

TEST(CodecRoundTrip, ArithmeticTypesKeepTheirExtremes) {
  expect_round_trip(std::numeric_limits<std::int8_t>::min());
  expect_round_trip(std::numeric_limits<std::uint8_t>::max());
  expect_round_trip(std::numeric_limits<std::int16_t>::min());
  expect_round_trip(std::numeric_limits<std::uint16_t>::max());
  expect_round_trip(std::numeric_limits<int>::min());
  expect_round_trip(std::numeric_limits<unsigned>::max());
  expect_round_trip(std::numeric_limits<long>::min());
  expect_round_trip(std::numeric_limits<unsigned long long>::max());
  expect_round_trip('x');
  expect_round_trip(u8'y');
  expect_round_trip(u'\u263a');
  expect_round_trip(U'\U0001F600');
  expect_round_trip(L'w');
  expect_round_trip(3.25f);
  expect_round_trip(-0.0);
  expect_round_trip(std::numeric_limits<double>::infinity());
  expect_round_trip(std::numeric_limits<double>::denorm_min());
  expect_round_trip(1.0L / 3.0L);
  EXPECT_TRUE(std::isnan(round_trip(std::numeric_limits<double>::quiet_NaN())));
  EXPECT_TRUE(std::signbit(round_trip(-0.0)));
}

TEST(CodecRoundTrip, BoolsAndEnums) {
  expect_round_trip(true);
  expect_round_trip(false);
  expect_round_trip(Toggle::on);
  expect_round_trip(Color::green);
  expect_round_trip(Level::low);
  expect_round_trip(std::byte{0xab});
}

TEST(CodecRoundTrip, Strings) {
  expect_round_trip(std::string());
  expect_round_trip(std::string("short"));
  expect_round_trip(std::string("embedded\0nul", 12));
  expect_round_trip(std::string(100000, 'z'));  // past the out-of-band flag size
  expect_round_trip(std::u16string(u"\u00e9t\u00e9"));
  expect_round_trip(std::u32string(5000, U'\U0001F600'));
  expect_round_trip(std::wstring(L"wide"));
}

TEST(CodecRoundTrip, Vectors) {
  expect_round_trip(std::vector<int>{});
  expect_round_trip(std::vector<int>{1, -2, 3});
  expect_round_trip(std::vector<double>(10000, 0.25));
  expect_round_trip(std::vector<std::string>{"a", "", std::string(300, 'b')});
  expect_round_trip(std::vector<bool>{true, false, true, true});
  expect_round_trip(std::vector<Point>{{1, 2}, {3, 4}});
  expect_round_trip(std::vector<std::vector<int>>{{1}, {}, {2, 3}});
  expect_round_trip(std::vector<Color>{Color::red, Color::blue});
}

TEST(CodecRoundTrip, EveryStdContainer) {
  expect_round_trip(std::array<int, 3>{4, 5, 6});
  expect_round_trip(std::array<std::string, 2>{"x", "y"});
  expect_round_trip(std::deque<int>{1, 2, 3});
  expect_round_trip(std::deque<bool>{true, false});
  expect_round_trip(std::list<bool>{false, true});
  expect_round_trip(std::list<std::string>{"l", "m"});
  expect_round_trip(std::set<int>{3, 1, 2});
  expect_round_trip(std::multiset<int>{1, 1, 2});
  expect_round_trip(std::unordered_set<std::string>{"u", "v"});
  expect_round_trip(std::unordered_multiset<int>{5, 5});
  expect_round_trip(std::map<std::string, int>{{"one", 1}, {"two", 2}});
  expect_round_trip(std::multimap<int, int>{{1, 1}, {1, 2}});
  expect_round_trip(std::unordered_map<int, std::vector<int>>{{1, {1}}, {2, {}}});
  expect_round_trip(std::unordered_multimap<int, int>{{7, 1}, {7, 2}});
}

TEST(CodecRoundTrip, PairTupleOptionalVariant) {
  expect_round_trip(std::pair<int, std::string>{1, "one"});
  expect_round_trip(std::tuple<>{});
  expect_round_trip(std::tuple<int, double, std::string>{1, 2.5, "three"});
  expect_round_trip(std::optional<int>{});
  expect_round_trip(std::optional<std::string>{"set"});
  using V = std::variant<std::monostate, int, std::string, std::vector<double>>;
  expect_round_trip(V{});
  expect_round_trip(V{42});
  expect_round_trip(V{std::string("s")});
  expect_round_trip(V{std::vector<double>{1.5}});
  EXPECT_EQ(round_trip(V{42}).index(), 1u);
}

TEST(CodecRoundTrip, ChronoDurationsAndTimePoints) {
  using namespace std::chrono;
  expect_round_trip(milliseconds(-1234));
  expect_round_trip(duration<double>(0.5));
  expect_round_trip(duration<std::int32_t, std::ratio<60>>(3));
  expect_round_trip(system_clock::now());
  expect_round_trip(steady_clock::now());
  expect_round_trip(time_point<system_clock, seconds>(seconds(1700000000)));
}

TEST(CodecRoundTrip, AggregatesNeedNoCode) {
  expect_round_trip(Point{1.5, 2.5});
  expect_round_trip(Order{1, "Ada", 2.5, 3, false});
  expect_round_trip(sample_nested());
  expect_round_trip(Empty{});
}

TEST(CodecRoundTrip, RecursiveType) {
  Tree tree{1, {}};
  Tree* tip = &tree;
  for (int depth = 2; depth <= 50; ++depth) {
    tip->children.push_back(Tree{depth, {}});
    tip->children.push_back(Tree{-depth, {}});
    tip = &tip->children.front();
  }
  expect_round_trip(tree);
}

TEST(CodecRoundTrip, CerealConventionTypes) {
  expect_round_trip(Account("Linus", -42));
  Derived derived = round_trip(Derived{21, 0});
  EXPECT_EQ(derived.stored, 21);
  EXPECT_EQ(derived.doubled, 42);
  EXPECT_EQ(round_trip(thirdparty::Opaque(17)).value(), 17);
  thirdparty::Legacy legacy;
  legacy.a = 5;
  legacy.b = "five";
  thirdparty::Legacy back = round_trip(legacy);
  EXPECT_EQ(back.a, 5);
  EXPECT_EQ(back.b, "five");
  EXPECT_EQ(round_trip(std::vector<Account>{{"a", 1}, {"b", 2}}).size(), 2u);
}

int triple(int x) { return 3 * x; }

TEST(CodecRoundTrip, FunctionPointersAndStatelessLambdas) {
  int (*f)(int) = &triple;
  EXPECT_EQ(round_trip(f)(5), 15);
  auto lambda = [](int x) { return x + 100; };
  EXPECT_EQ(round_trip(lambda)(1), 101);
  EXPECT_EQ(mproc::encode(lambda).bytes().size(), 8u);  // the fingerprint alone
}

TEST(CodecRoundTrip, DescriptorsTravelOutOfBand) {
  auto pair = mproc::os::socket_pair();
  ASSERT_TRUE(pair.ok());
  std::vector<mproc::UniqueFd> value;
  value.push_back(std::move(pair.value.first));
  mproc::EncodedMessage message = mproc::encode(value);
  ASSERT_EQ(message.fds().size(), 1u);
  EXPECT_EQ(message.fds()[0], value[0].get());  // borrowed, not duplicated

  std::vector<mproc::UniqueFd> arrived;
  arrived.push_back(value[0].dup());  // what SCM_RIGHTS would deliver
  auto decoded = mproc::decode<std::vector<mproc::UniqueFd>>(message.bytes(), arrived);
  ASSERT_EQ(decoded.size(), 1u);
  EXPECT_FALSE(arrived[0].valid());  // taken by the decoder

  const std::byte ping[] = {std::byte{'p'}};
  ASSERT_FALSE(mproc::os::write_all(decoded[0].get(), ping));
  std::byte got[1];
  auto read = mproc::os::read_full(pair.value.second.get(), got);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read.value, 1u);
  EXPECT_EQ(got[0], std::byte{'p'});
}

// ---------------------------------------------------------------------------
// Layout and reuse

TEST(CodecEncoder, LargeRangesGoOutOfBandWhenAsked) {
  mproc::Encoder encoder(mproc::EncodeOptions{.out_of_band_from = 64 * 1024});
  std::pair<std::vector<double>, std::vector<double>> value{std::vector<double>(100000, 1.0),
                                                            std::vector<double>(100, 2.0)};
  auto bytes = encoder.encode(value);
  ASSERT_EQ(encoder.buffers().size(), 1u);
  EXPECT_EQ(encoder.buffers()[0].data(), reinterpret_cast<const std::byte*>(value.first.data()));
  EXPECT_LT(bytes.size(), 1000u);  // the small vector stays in band

  EXPECT_EQ(mproc::decode<decltype(value)>(bytes, encoder.buffers(), {}), value);
}

TEST(CodecEncoder, OutOfBandBufferMissingOrMisSizedIsDecodeError) {
  mproc::Encoder encoder(mproc::EncodeOptions{.out_of_band_from = 4096});
  std::string text(10000, 't');
  auto bytes = encoder.encode(text);
  EXPECT_THROW(mproc::decode<std::string>(bytes), mproc::DecodeError);
  std::vector<std::byte> short_buffer(9999);
  mproc::ByteView wrong[] = {short_buffer};
  EXPECT_THROW(mproc::decode<std::string>(bytes, wrong, {}), mproc::DecodeError);
}

TEST(CodecEncoder, ReusedEncoderAllocatesNothingOnceGrown) {
  mproc::Encoder encoder;
  Order order{1, std::string(200, 'c'), 1.0, 1, true};
  (void)encoder.encode(order);
  AllocationProbe probe;
  for (int i = 0; i < 100; ++i) (void)encoder.encode(order);
  EXPECT_EQ(probe.count(), 0u);
}

TEST(CodecEncoder, UnalignedInputDecodesCorrectly) {
  std::vector<double> values{1.25, 2.5, 3.75};
  std::u32string text = U"unaligned";
  auto message = mproc::encode(std::pair{values, text});
  std::vector<std::byte> shifted(message.bytes().size() + 1);
  std::memcpy(shifted.data() + 1, message.bytes().data(), message.bytes().size());
  auto [values2, text2] = mproc::decode<std::pair<std::vector<double>, std::u32string>>(
      std::span<const std::byte>(shifted).subspan(1));
  EXPECT_EQ(values2, values);
  EXPECT_EQ(text2, text);
}

TEST(CodecEncoder, EncodingDeeperThanTheDecoderAcceptsIsEncodeError) {
  Tree tree;
  Tree* tip = &tree;
  for (std::size_t i = 0; i < mproc::DecodeLimits{}.max_depth + 1; ++i) {
    tip->children.emplace_back();
    tip = &tip->children.back();
  }
  EXPECT_THROW(mproc::encode(tree), mproc::EncodeError);
}

// ---------------------------------------------------------------------------
// Fingerprints

struct SameLayoutAsPoint {
  double x, y;
};

TEST(CodecFingerprint, DistinguishesTypesThatLookAlike) {
  using mproc::type_fingerprint;
  EXPECT_NE(type_fingerprint<int>(), type_fingerprint<unsigned>());
  EXPECT_NE(type_fingerprint<int>(), type_fingerprint<float>());
  EXPECT_NE(type_fingerprint<std::int64_t>(), type_fingerprint<double>());
  EXPECT_NE(type_fingerprint<std::string>(), type_fingerprint<std::vector<char>>());
  EXPECT_NE(type_fingerprint<std::vector<int>>(), type_fingerprint<std::list<int>>());
  EXPECT_NE(type_fingerprint<std::set<int>>(), type_fingerprint<std::unordered_set<int>>());
  EXPECT_NE(type_fingerprint<Point>(), type_fingerprint<SameLayoutAsPoint>());
  EXPECT_NE((type_fingerprint<std::pair<int, double>>()), (type_fingerprint<std::pair<double, int>>()));
  EXPECT_NE(type_fingerprint<std::chrono::seconds>(), type_fingerprint<std::chrono::milliseconds>());
}

TEST(CodecFingerprint, AgreesForTheSameWireType) {
  using mproc::type_fingerprint;
  EXPECT_EQ(type_fingerprint<int>(), type_fingerprint<std::int32_t>());
  EXPECT_EQ(type_fingerprint<long>(), type_fingerprint<long long>());
  EXPECT_EQ(type_fingerprint<const std::string&>(), type_fingerprint<std::string>());
  // Allocators and comparators do not change what is sent.
  EXPECT_EQ(type_fingerprint<std::set<int>>(), (type_fingerprint<std::set<int, std::greater<int>>>()));
}

// ---------------------------------------------------------------------------
// Hostile input

template <class T>
void expect_decode_error(std::span<const std::byte> input, const char* needle = "") {
  mproc::testing::expect_throw_containing<mproc::DecodeError>([&] { (void)mproc::decode<T>(input); },
                                                              needle);
}

TEST(CodecHostileInput, EmptyInputIsDecodeError) {
  expect_decode_error<int>({}, "fingerprint");
}

TEST(CodecHostileInput, EveryTruncationIsDecodeError) {
  auto full = bytes_of(mproc::encode(sample_nested()));
  for (std::size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE(n);
    expect_decode_error<Nested>(std::span<const std::byte>(full).first(n));
  }
}

TEST(CodecHostileInput, WrongTypeIsDecodeErrorNamingTheFingerprint) {
  auto message = mproc::encode(42);
  expect_decode_error<std::string>(message.bytes(), "fingerprint");
  expect_decode_error<unsigned>(message.bytes(), "fingerprint");
}

TEST(CodecHostileInput, TrailingBytesAreDecodeError) {
  auto bytes = bytes_of(mproc::encode(42));
  bytes.push_back(std::byte{0});
  expect_decode_error<int>(bytes, "left over");
}

TEST(CodecHostileInput, LengthBeyondTheInputIsDecodeError) {
  Raw raw;
  raw.fingerprint<std::string>().put<std::uint64_t>(1000).put_text("short");
  expect_decode_error<std::string>(raw.span(), "more bytes");
}

// A count of 2^60 elements, for containers of several element types: each is
// refused before anything proportional to the count is allocated.
template <class T>
void expect_huge_count_refused() {
  Raw raw;
  raw.fingerprint<T>();
  raw.put(std::uint64_t{1} << 60).put(std::uint64_t{0});
  AllocationProbe probe;
  expect_decode_error<T>(raw.span());
  EXPECT_LT(probe.largest(), 4096u) << mproc::detail::type_name<T>();
  EXPECT_LT(probe.total(), 16384u) << mproc::detail::type_name<T>();
}

TEST(CodecHostileInput, HugeElementCountIsRefusedBeforeAllocating) {
  expect_huge_count_refused<std::string>();
  expect_huge_count_refused<std::vector<int>>();
  expect_huge_count_refused<std::vector<double>>();
  expect_huge_count_refused<std::vector<std::string>>();
  expect_huge_count_refused<std::vector<Order>>();
  expect_huge_count_refused<std::vector<bool>>();
  expect_huge_count_refused<std::deque<Tree>>();
  expect_huge_count_refused<std::map<int, int>>();
  expect_huge_count_refused<std::unordered_set<std::string>>();
  expect_huge_count_refused<std::vector<std::vector<int>>>();
}

TEST(CodecHostileInput, CountBeyondWhatTheInputCanHoldIsRefusedBeforeAllocating) {
  // One MiB of input claiming ten million strings (each needs 8 bytes).
  Raw raw;
  raw.fingerprint<std::vector<std::string>>().put<std::uint64_t>(10'000'000);
  for (int i = 0; i < (1 << 20) / 8; ++i) raw.put<std::uint64_t>(0);
  AllocationProbe probe;
  expect_decode_error<std::vector<std::string>>(raw.span(), "count 10000000");
  EXPECT_LT(probe.largest(), 4096u);
}

TEST(CodecHostileInput, PlausibleCountReservesNoMoreThanTheInputSize) {
  // 100000 strings claimed, 800 KB of room for them, but the 1001st is bogus.
  // The decoder never reserves more than the input's size (here, 100000
  // strings would take 3.2 MB), and fails at the bogus string.
  Raw raw;
  raw.fingerprint<std::vector<std::string>>().put<std::uint64_t>(100000);
  for (int i = 0; i < 1000; ++i) raw.put<std::uint64_t>(0);
  raw.put<std::uint64_t>(std::uint64_t{1} << 40);
  for (int i = 0; i < 100000; ++i) raw.put<std::uint64_t>(0);
  AllocationProbe probe;
  expect_decode_error<std::vector<std::string>>(raw.span(), "more bytes");
  EXPECT_LE(probe.largest(), raw.size());
}

TEST(CodecHostileInput, NestingHundredThousandDeepIsDecodeError) {
  // Tree{value, children = [Tree{...}]} nested 100000 times.
  Raw raw;
  raw.fingerprint<Tree>();
  for (int i = 0; i < 100000; ++i) raw.put<std::int32_t>(i).put<std::uint64_t>(1);
  raw.put<std::int32_t>(0).put<std::uint64_t>(0);
  expect_decode_error<Tree>(raw.span(), "max_depth");
}

TEST(CodecHostileInput, DepthLimitIsConfigurable) {
  Tree tree{0, {Tree{1, {Tree{2, {}}}}}};
  auto message = mproc::encode(tree);
  EXPECT_THROW(mproc::decode<Tree>(message.bytes(), mproc::DecodeLimits{.max_depth = 2}),
               mproc::DecodeError);
  EXPECT_EQ(mproc::decode<Tree>(message.bytes(), mproc::DecodeLimits{.max_depth = 3}), tree);
}

TEST(CodecHostileInput, InvalidFlagsAndIndicesAreDecodeErrors) {
  expect_decode_error<bool>(Raw().fingerprint<bool>().put<std::uint8_t>(2).span(), "bool");
  expect_decode_error<std::optional<int>>(
      Raw().fingerprint<std::optional<int>>().put<std::uint8_t>(7).span(), "optional");
  using V = std::variant<int, double>;
  expect_decode_error<V>(Raw().fingerprint<V>().put<std::uint8_t>(2).put<int>(0).span(), "variant");
  expect_decode_error<std::vector<bool>>(
      Raw().fingerprint<std::vector<bool>>().put<std::uint64_t>(1).put<std::uint8_t>(9).span(),
      "bool");
}

TEST(CodecHostileInput, DuplicateKeysAreDecodeErrors) {
  expect_decode_error<std::set<int>>(
      Raw().fingerprint<std::set<int>>().put<std::uint64_t>(2).put(5).put(5).span(), "duplicate");
  using M = std::map<int, int>;
  expect_decode_error<M>(
      Raw().fingerprint<M>().put<std::uint64_t>(2).put(1).put(10).put(1).put(20).span(), "duplicate");
  using MM = std::multimap<int, int>;
  EXPECT_EQ(mproc::decode<MM>(
                Raw().fingerprint<MM>().put<std::uint64_t>(2).put(1).put(10).put(1).put(20).span())
                .size(),
            2u);
}

TEST(CodecHostileInput, NonzeroPaddingIsDecodeError) {
  // A vector<double> after a one-byte bool: the payload is aligned to 8.
  using P = std::pair<bool, std::vector<double>>;
  auto bytes = bytes_of(mproc::encode(P{true, {1.0}}));
  // fingerprint (8) + bool (1) + count (8) = 17; padding runs to 24.
  bytes[17] = std::byte{1};
  expect_decode_error<P>(bytes, "padding");
}

TEST(CodecHostileInput, CustomTypeMustReadExactlyItsOwnBytes) {
  expect_decode_error<Lopsided>(mproc::encode(Lopsided{1, 2}).bytes(), "read 4 of its 8 bytes");
  Raw raw;
  raw.fingerprint<Account>().put<std::uint32_t>(1000).put<std::uint64_t>(0);
  expect_decode_error<Account>(raw.span(), "more bytes");
}

TEST(CodecHostileInput, DescriptorIndexOutOfRangeOrReusedIsDecodeError) {
  using Two = std::pair<mproc::UniqueFd, mproc::UniqueFd>;
  Raw raw;
  raw.fingerprint<Two>().put<std::uint32_t>(0).put<std::uint32_t>(0);
  expect_decode_error<Two>(raw.span(), "descriptor index 0 but 0");

  auto pair = mproc::os::socket_pair();
  ASSERT_TRUE(pair.ok());
  mproc::UniqueFd fds[] = {std::move(pair.value.first)};
  mproc::testing::expect_throw_containing<mproc::DecodeError>(
      [&] { (void)mproc::decode<Two>(raw.span(), fds); }, "taken twice");
}

TEST(CodecHostileInput, EnumOverBoolAcceptsOnlyZeroAndOne) {
  expect_decode_error<Toggle>(Raw().fingerprint<Toggle>().put<std::uint8_t>(2).span(), "bool");
}

TEST(CodecHostileInput, ElementsThatExpandInMemoryAreBoundedByTheMessageSize) {
  // 20000 empty optionals: 20 KB of message, 1.3 GB of vector if believed.
  Raw raw;
  raw.fingerprint<std::vector<Expanding>>().put<std::uint64_t>(20000);
  for (int i = 0; i < 20000; ++i) raw.put<std::uint8_t>(0);
  AllocationProbe probe;
  expect_decode_error<std::vector<Expanding>>(raw.span(), "more memory than the message justifies");
  // The budget is 64 x the message + 1 MiB; a vector's doubling may make one
  // allocation of twice that (the old storage, alive meanwhile, makes 3x).
  std::size_t budget = 64 * raw.size() + (1u << 20);
  EXPECT_LT(probe.largest(), 2 * budget + sizeof(Expanding));
}

TEST(CodecHostileInput, OrdinaryExpansionStaysWithinTheBudget) {
  // 100000 empty strings: 32 bytes each in memory for 8 on the wire.
  std::vector<std::string> empties(100000);
  EXPECT_EQ(round_trip(empties).size(), empties.size());
  // A custom budget can be tighter.
  auto message = mproc::encode(empties);
  EXPECT_THROW(mproc::decode<std::vector<std::string>>(message.bytes(), mproc::DecodeLimits{.memory_factor = 2}),
               mproc::DecodeError);
}

TEST(CodecHostileInput, RecursiveTypeWithLargeNodesNeverOverflowsTheStack) {
  // BigNode{pad = nullopt, children = {0: BigNode{...}}}, 900 deep: 13 bytes
  // of message per level, 16 KiB of memory per node.
  Raw raw;
  raw.fingerprint<BigNode>();
  for (int i = 0; i < 900; ++i) raw.put<std::uint8_t>(0).put<std::uint64_t>(1).put<std::int32_t>(0);
  raw.put<std::uint8_t>(0).put<std::uint64_t>(0);
  expect_decode_error<BigNode>(raw.span(), "");
}

// Runs `body` on a thread with a 256 KiB stack.
template <class Body>
void on_small_stack(Body body) {
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setstacksize(&attributes, 256 * 1024);
  pthread_t thread;
  auto run = [](void* arg) -> void* {
    (*static_cast<Body*>(arg))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attributes, run, &body), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attributes);
}

TEST(CodecHostileInput, NestingStopsBeforeTheThreadStackRunsOut) {
  // Depth 20000 is allowed here; a 256 KiB stack is not enough for it.
  Raw raw;
  raw.fingerprint<Tree>();
  for (int i = 0; i < 20000; ++i) raw.put<std::int32_t>(i).put<std::uint64_t>(1);
  raw.put<std::int32_t>(0).put<std::uint64_t>(0);
  std::string error;
  on_small_stack([&] {
    try {
      (void)mproc::decode<Tree>(raw.span(), mproc::DecodeLimits{.max_depth = 1'000'000});
    } catch (const mproc::DecodeError& e) {
      error = e.what();
    }
  });
  EXPECT_NE(error.find("stack"), std::string::npos) << error;
}

TEST(CodecHostileInput, OutOfBandBufferMustBeUsedExactlyOnce) {
  mproc::Encoder encoder(mproc::EncodeOptions{.out_of_band_from = 4096});
  std::pair<std::string, std::string> two{std::string(5000, 'a'), std::string(5000, 'b')};
  auto bytes = bytes_of_span(encoder.encode(two));
  std::vector<mproc::ByteView> buffers(encoder.buffers().begin(), encoder.buffers().end());
  ASSERT_EQ(buffers.size(), 2u);
  // Point the second string at the first buffer too.
  auto reused = bytes;
  std::uint32_t zero = 0;
  std::size_t second_index_at = bytes.size() - sizeof(std::uint32_t);
  std::memcpy(reused.data() + second_index_at, &zero, sizeof(zero));
  mproc::testing::expect_throw_containing<mproc::DecodeError>(
      [&] { (void)mproc::decode<decltype(two)>(reused, buffers, {}); }, "used twice");
  // A buffer that arrives but is not referred to.
  std::vector<std::byte> spare(10);
  buffers.push_back(spare);
  mproc::testing::expect_throw_containing<mproc::DecodeError>(
      [&] { (void)mproc::decode<decltype(two)>(bytes, buffers, {}); }, "does not use");
}

TEST(CodecEncoder, LongDoublePaddingIsNotSent) {
  long double value = 1.0L / 3.0L;
  std::memset(static_cast<void*>(&value), 0xab, sizeof(value));
  value = 1.0L / 3.0L;  // the 6 padding bytes keep 0xab
  auto bytes = bytes_of(mproc::encode(value));
  for (std::size_t i = 8 + 10; i < bytes.size(); ++i) EXPECT_EQ(bytes[i], std::byte{0}) << i;
  EXPECT_EQ(round_trip(value), value);
}

// Random mutations of valid messages: each decode either succeeds or throws
// DecodeError; none crashes, hangs or allocates wildly.
template <class T>
void mutate_and_decode(const T& value, std::mt19937_64& rng, int rounds) {
  auto original = bytes_of(mproc::encode(value));
  for (int round = 0; round < rounds; ++round) {
    auto bytes = original;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      std::size_t at = rng() % bytes.size();
      switch (rng() % 4) {
        case 0: bytes[at] = static_cast<std::byte>(rng()); break;
        case 1: bytes.erase(bytes.begin() + static_cast<std::ptrdiff_t>(at)); break;
        case 2: bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::byte>(rng())); break;
        default: bytes.resize(at); break;
      }
    }
    try {
      (void)mproc::decode<T>(bytes);
    } catch (const mproc::DecodeError&) {
    }
  }
}

TEST(CodecHostileInput, RandomMutationsNeverCrash) {
  std::mt19937_64 rng(20261122);
  AllocationProbe probe;
  mutate_and_decode(sample_nested(), rng, 5000);
  mutate_and_decode(Tree{1, {Tree{2, {}}, Tree{3, {Tree{4, {}}}}}}, rng, 5000);
  mutate_and_decode(std::map<std::string, std::vector<std::optional<int>>>{{"k", {1, {}, 3}}}, rng, 5000);
  mutate_and_decode(std::vector<Account>{{"x", 1}, {"y", 2}}, rng, 5000);
  EXPECT_LT(probe.largest(), 1u << 20);
}

}  // namespace
