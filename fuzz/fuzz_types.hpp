// The types the codec fuzzer decodes, shared with the corpus generator.
//
// Fuzz input layout: [selector u8][buffer count u8 (mod 3)][buffer sizes,
// u16 each][message bytes][buffers, taken from the end]. The selector picks
// the type to decode.

#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

#include "mproc/mproc.hpp"

namespace fuzz {

struct Point {
  double x, y;
};

struct Order {
  std::int64_t id;
  std::string customer;
  std::vector<Point> path;
  std::optional<std::map<std::string, int>> tags;
  std::variant<std::monostate, int, std::string> note;
  bool urgent;
};

struct Tree {
  int value;
  std::vector<Tree> children;
};

class Account {
 public:
  Account() = default;
  Account(std::string owner, long cents) : owner_(std::move(owner)), cents_(cents) {}
  template <class Archive>
  void save(Archive& ar) const {
    ar(owner_, cents_);
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(owner_, cents_);
  }

 private:
  std::string owner_;
  long cents_ = 0;
};

enum class Toggle : bool { off, on };

// Small on the wire, large in memory.
struct Expanding {
  std::optional<std::array<char, 4096>> payload;
  Toggle toggle;
};

// Recursive through a map, with large nodes.
struct MapNode {
  std::optional<std::array<char, 2048>> pad;
  std::map<int, MapNode> children;
};

inline int negate(int x) { return -x; }

using Mixed = std::tuple<std::set<int>, std::unordered_map<int, std::string>, std::deque<bool>,
                         std::list<double>>;
using Alternatives = std::variant<int, std::string, std::vector<std::u32string>,
                                  std::chrono::milliseconds, int (*)(int)>;
using Descriptors = std::pair<mproc::UniqueFd, std::vector<mproc::UniqueFd>>;

// Calls f.template operator()<T>() for the type with this selector.
template <class F>
void with_type(std::uint8_t selector, F&& f) {
  switch (selector % 11) {
    case 0: f.template operator()<Order>(); break;
    case 1: f.template operator()<Tree>(); break;
    case 2: f.template operator()<std::map<std::string, std::vector<std::optional<int>>>>(); break;
    case 3: f.template operator()<Mixed>(); break;
    case 4: f.template operator()<mproc::Function<int(int)>>(); break;
    case 5: f.template operator()<std::vector<Account>>(); break;
    case 6: f.template operator()<Descriptors>(); break;
    case 7: f.template operator()<Alternatives>(); break;
    case 8: f.template operator()<std::vector<std::string>>(); break;
    case 9: f.template operator()<std::vector<Expanding>>(); break;
    default: f.template operator()<MapNode>(); break;
  }
}

}  // namespace fuzz
