// Codec rows of `make bench`: encode + decode with a reused Encoder, as a
// connection or queue does.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mproc/codec.hpp"
#include "mproc/function.hpp"

namespace {

// Five fields, one a string: the struct of the "codec struct" row, and the
// dataclass of cpython_bench.py.
struct Order {
  std::int64_t id;
  std::string customer;
  double price;
  std::int32_t quantity;
  bool urgent;
};

void BM_CodecInt(benchmark::State& state) {
  mproc::Encoder encoder;
  int value = 42;
  for (auto _ : state) {
    auto bytes = encoder.encode(value);
    value = mproc::decode<int>(bytes);
    benchmark::DoNotOptimize(value);
  }
}
BENCHMARK(BM_CodecInt);

void BM_CodecStruct5(benchmark::State& state) {
  mproc::Encoder encoder;
  Order order{123456789, "Ada Lovelace & Co.", 1234.5, 7, true};
  for (auto _ : state) {
    auto bytes = encoder.encode(order);
    Order copy = mproc::decode<Order>(bytes);
    benchmark::DoNotOptimize(copy);
  }
}
BENCHMARK(BM_CodecStruct5);

constexpr std::size_t kMiB = 1 << 20;

std::vector<double> mebibyte_of_doubles() {
  std::vector<double> values(kMiB / sizeof(double));
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i) * 0.5;
  return values;
}

// As mproc's transports encode: the vector's bytes go out of band (borrowed,
// not copied) and the decoder's copy is the only one.
void BM_CodecVector1MiB(benchmark::State& state) {
  mproc::Encoder encoder(mproc::EncodeOptions{.out_of_band_from = 64 * 1024});
  std::vector<double> values = mebibyte_of_doubles();
  for (auto _ : state) {
    auto bytes = encoder.encode(values);
    auto copy = mproc::decode<std::vector<double>>(bytes, encoder.buffers(), {});
    benchmark::DoNotOptimize(copy.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kMiB));
}
BENCHMARK(BM_CodecVector1MiB);

// Self-contained messages: the bytes are copied into the message and out again.
void BM_CodecVector1MiBInBand(benchmark::State& state) {
  mproc::Encoder encoder;
  std::vector<double> values = mebibyte_of_doubles();
  for (auto _ : state) {
    auto bytes = encoder.encode(values);
    auto copy = mproc::decode<std::vector<double>>(bytes);
    benchmark::DoNotOptimize(copy.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kMiB));
}
BENCHMARK(BM_CodecVector1MiBInBand);

int scale(int factor, int x) { return factor * x; }

// A function crossing by reference: partial(scale, 3) encoded, decoded, called.
void BM_CodecFunctionPartial(benchmark::State& state) {
  mproc::Encoder encoder;
  mproc::Function<int(int)> f = mproc::partial(scale, 3);
  int x = 1;
  for (auto _ : state) {
    auto bytes = encoder.encode(f);
    x = mproc::decode<mproc::Function<int(int)>>(bytes)(x) & 0xff;
    benchmark::DoNotOptimize(x);
  }
}
BENCHMARK(BM_CodecFunctionPartial);

}  // namespace
