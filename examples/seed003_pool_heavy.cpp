// Seed 003, "# Pool" (In [17]): four calls of heavy(n) go to a Pool with
// apply_async; the parent logs the first three results as they come, then
// gives the fourth, heavy(10_000), 3 seconds with get(timeout) and catches
// the TimeoutError. Leaving the pool's scope (Python's `with` exit)
// terminates the worker still running heavy(10_000).
//
// heavy(n) sums x**y over 0 <= y < x < n exactly, as Python's integers do,
// and returns int(log10(sum)): here the number of decimal digits of the sum
// less one, which is the same (7, 195 and 2993 for 10, 100 and 1000; the
// sums are not within rounding of a power of ten). The seed computes each
// x**y anew; here each power is the previous one times x, the same sum. At
// n = 10_000 the sum has 40_000 digits and the 50 million additions take
// minutes: far more than the 3 seconds the parent waits.

#include <cmath>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

// The seed's logger: '[%(processName)s]: %(message)s'.
void log(const std::string& message) {
  std::cout << "[" + mproc::current_process().name() + "]: " + message << std::endl;
}

// A natural number in base 10^9, least significant limb first: Python's int,
// as far as heavy() needs it.
class Natural {
 public:
  explicit Natural(std::uint32_t value) {
    do {
      limbs_.push_back(value % kBase);
      value /= kBase;
    } while (value != 0);
  }

  Natural& operator+=(const Natural& other) {
    if (limbs_.size() < other.limbs_.size()) limbs_.resize(other.limbs_.size(), 0);
    std::uint32_t carry = 0;
    std::size_t i = 0;
    for (; i < other.limbs_.size() || (carry != 0 && i < limbs_.size()); ++i) {
      std::uint32_t sum = limbs_[i] + carry + (i < other.limbs_.size() ? other.limbs_[i] : 0);
      carry = sum >= kBase ? 1 : 0;
      limbs_[i] = sum - carry * kBase;
    }
    if (carry != 0) limbs_.push_back(carry);
    return *this;
  }

  Natural& operator*=(std::uint32_t factor) {  // factor < 2^32
    std::uint64_t carry = 0;
    for (auto& limb : limbs_) {
      std::uint64_t product = std::uint64_t{limb} * factor + carry;
      limb = static_cast<std::uint32_t>(product % kBase);
      carry = product / kBase;
    }
    while (carry != 0) {
      limbs_.push_back(static_cast<std::uint32_t>(carry % kBase));
      carry /= kBase;
    }
    return *this;
  }

  // The number of decimal digits (of a value above zero).
  std::size_t digits() const {
    std::size_t count = 9 * (limbs_.size() - 1);
    for (std::uint32_t top = limbs_.back(); top != 0; top /= 10) ++count;
    return count;
  }

 private:
  static constexpr std::uint32_t kBase = 1'000'000'000;
  std::vector<std::uint32_t> limbs_;  // never empty
};

int heavy(int n) {
  log("Running heavy function");
  Natural a(0);
  for (int x = 0; x < n; ++x) {
    Natural power(1);  // x**y
    for (int y = 0; y < x; ++y) {
      a += power;
      power *= static_cast<std::uint32_t>(x);
    }
  }
  return static_cast<int>(a.digits()) - 1;  // int(math.log(a, 10))
}

int main() {
  mproc::Pool pool;
  auto result_1 = pool.apply_async(heavy, 10);
  auto result_2 = pool.apply_async(heavy, 100);
  auto result_3 = pool.apply_async(heavy, 1'000);
  auto result_4 = pool.apply_async(heavy, 10'000);
  log(std::to_string(result_1.get()));
  log(std::to_string(result_2.get()));
  log(std::to_string(result_3.get()));
  try {
    result_4.get(std::chrono::seconds(3));
  } catch (const mproc::TimeoutError&) {
    log("TimeoutError caught");
  }
}
