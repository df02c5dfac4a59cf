// Writes the seed corpora: for codec_fuzzer, valid encodings of each fuzzed
// type in its input layout (see fuzz_types.hpp); for connection_fuzzer,
// streams of valid frames as a Connection sends them. One file each.
// Usage: codec_fuzz_corpus CODEC_DIR [CONNECTION_DIR]

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "fuzz_types.hpp"

namespace {

int written = 0;

void write_seed(const std::string& dir, std::uint8_t selector, mproc::Encoder& encoder,
                std::span<const std::byte> message) {
  std::vector<std::byte> seed{std::byte{selector}, static_cast<std::byte>(encoder.buffers().size())};
  for (auto buffer : encoder.buffers()) {
    auto n = static_cast<std::uint16_t>(buffer.size());
    seed.push_back(static_cast<std::byte>(n & 0xff));
    seed.push_back(static_cast<std::byte>(n >> 8));
  }
  seed.insert(seed.end(), message.begin(), message.end());
  // Buffers are taken from the end in order: the first listed is last.
  for (auto it = encoder.buffers().rbegin(); it != encoder.buffers().rend(); ++it) {
    seed.insert(seed.end(), it->begin(), it->end());
  }
  std::string path = dir + "/seed-" + std::to_string(written++);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return;
  std::fwrite(seed.data(), 1, seed.size(), f);
  std::fclose(f);
}

template <class T>
void seed(const std::string& dir, std::uint8_t selector, const T& value) {
  mproc::Encoder in_band;
  write_seed(dir, selector, in_band, in_band.encode(value));
  mproc::Encoder out_of_band(mproc::EncodeOptions{.out_of_band_from = mproc::kMinOutOfBandBytes});
  auto message = out_of_band.encode(value);
  if (!out_of_band.buffers().empty()) write_seed(dir, selector, out_of_band, message);
}

// A connection_fuzzer seed: four operation bytes, then the bytes that
// `send` writes to a connection.
template <class Send>
void connection_seed(const std::string& dir, std::array<std::uint8_t, 4> operations, Send send) {
  auto [writer, reader] = mproc::Pipe();
  send(writer);
  writer.close();
  std::vector<std::byte> seed;
  for (std::uint8_t op : operations) seed.push_back(static_cast<std::byte>(op));
  std::byte chunk[65536];
  for (ssize_t n; (n = ::read(reader.fileno(), chunk, sizeof(chunk))) > 0;) seed.insert(seed.end(), chunk, chunk + n);
  std::string path = dir + "/seed-" + std::to_string(written++);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return;
  std::fwrite(seed.data(), 1, seed.size(), f);
  std::fclose(f);
}

void write_connection_corpus(const std::string& dir) {
  using namespace fuzz;
  // Operation bytes: low two bits pick recv<T> (T by the rest), recv_bytes,
  // recv_bytes(16), recv_bytes_into.
  connection_seed(dir, {1, 2, 3, 1}, [](mproc::Connection& c) {
    c.send_bytes(std::string_view("short"));
    c.send_bytes(std::string_view("a message longer than sixteen bytes"));
    c.send_bytes(std::string(20000, 'x'));
  });
  connection_seed(dir, {0 << 2, 8 << 2, 1, 0 << 2}, [](mproc::Connection& c) {
    c.send(Order{7, "Grace", {{1, 2}}, std::nullopt, 5, true});
    c.send(std::vector<std::string>{"a", std::string(66000, 'b')});  // an out-of-band buffer
    c.send(std::vector<std::string>{"c"});
  });
  connection_seed(dir, {5 << 2, 2, 3, 1}, [](mproc::Connection& c) {
    c.send(std::vector<Account>{{"Ada", 1}});
    c.send(std::vector<double>(8300, 0.5));  // out of band, 66 KB
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) return 2;
  if (argc == 3) write_connection_corpus(argv[2]);
  std::string dir = argv[1];
  using namespace fuzz;
  seed(dir, 0, Order{7, "Grace", {{1, 2}, {3, 4}}, std::map<std::string, int>{{"a", 1}}, 5, true});
  seed(dir, 0, Order{8, std::string(5000, 'g'), std::vector<Point>(400), std::nullopt, std::string("n"), false});
  seed(dir, 1, Tree{1, {Tree{2, {Tree{3, {}}}}, Tree{4, {}}}});
  seed(dir, 2, std::map<std::string, std::vector<std::optional<int>>>{{"k", {1, std::nullopt, 3}}});
  seed(dir, 3, Mixed{{1, 2, 3}, {{1, "one"}}, {true, false}, {0.5, 1.5}});
  seed(dir, 4, mproc::Function<int(int)>(&negate));
  seed(dir, 4, mproc::Function<int(int)>(mproc::partial([](int a, int b) { return a * b; }, 3)));
  seed(dir, 4, mproc::Function<int(int)>([](int x) { return x + 1; }));
  seed(dir, 5, std::vector<Account>{{"Ada", 1}, {"Alan", 2}});
  Descriptors descriptors;
  descriptors.first = mproc::UniqueFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  descriptors.second.push_back(mproc::UniqueFd(open("/dev/null", O_RDONLY | O_CLOEXEC)));
  seed(dir, 6, descriptors);
  seed(dir, 7, Alternatives{std::vector<std::u32string>{U"x", U"yz"}});
  seed(dir, 7, Alternatives{&negate});
  seed(dir, 7, Alternatives{std::chrono::milliseconds(5)});
  seed(dir, 8, std::vector<std::string>{"a", std::string(9000, 'b'), ""});
  seed(dir, 9, std::vector<Expanding>{{std::nullopt, Toggle::on}, {std::array<char, 4096>{}, Toggle::off}});
  // 1500 empty optionals: 3 KB of message for 6 MB of vector, over the budget.
  seed(dir, 9, std::vector<Expanding>(1500));
  seed(dir, 10, MapNode{std::nullopt, {{1, MapNode{}}, {2, MapNode{std::array<char, 2048>{}, {{3, MapNode{}}}}}}});
  std::printf("wrote %d seeds to %s\n", written, dir.c_str());
  return 0;
}
