// The codec: what pickle is to Python's multiprocessing, without running code
// on decode. Structs cross with no code; bad input is a clean DecodeError.

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

struct Order {
  long id;
  std::string customer;
  std::vector<double> prices;
  std::optional<std::string> note;
};

// A type with private state uses cereal's convention.
class Account {
 public:
  Account() = default;
  Account(std::string owner, long cents) : owner_(std::move(owner)), cents_(cents) {}
  std::string describe() const { return owner_ + ": " + std::to_string(cents_) + " cents"; }

 private:
  friend struct mproc::access;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(owner_, cents_);
  }
  std::string owner_;
  long cents_ = 0;
};

int main() {
  Order order{42, "Ada", {9.5, 12.25}, "fragile"};
  mproc::EncodedMessage message = mproc::encode(order);
  std::printf("Order encodes to %zu bytes\n", message.bytes().size());

  Order copy = mproc::decode<Order>(message.bytes());
  std::printf("decoded: #%ld for %s, %zu prices, note %s\n", copy.id, copy.customer.c_str(),
              copy.prices.size(), copy.note.value_or("-").c_str());

  std::map<std::string, Account> accounts{{"ada", {"Ada", 1200}}, {"alan", {"Alan", -5}}};
  auto decoded = mproc::decode<decltype(accounts)>(mproc::encode(accounts).bytes());
  for (const auto& [key, account] : decoded) std::printf("  %s -> %s\n", key.c_str(), account.describe().c_str());

  // The message says what type it holds: asking for another is an error, not garbage.
  try {
    (void)mproc::decode<std::string>(message.bytes());
  } catch (const mproc::DecodeError&) {
    std::printf("decoding an Order as a std::string: DecodeError\n");
  }
  // A truncated message is an error too.
  try {
    (void)mproc::decode<Order>(message.bytes().first(message.bytes().size() - 3));
  } catch (const mproc::DecodeError&) {
    std::printf("decoding a truncated Order: DecodeError\n");
  }
}
