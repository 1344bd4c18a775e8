#include "config/base/random.h"

#include <gtest/gtest.h>

#include <array>
#include <set>

namespace sag::base {
namespace {

TEST(RandomTest, FillsEveryByte) {
  // 64 bytes of zeros left untouched by chance: 2^-512.
  std::array<unsigned char, 64> a{};
  random_bytes(a.data(), a.size());
  std::array<unsigned char, 64> zero{};
  EXPECT_NE(a, zero);
  // Odd sizes and the empty range.
  std::array<unsigned char, 7> b{};
  random_bytes(b.data(), b.size());
  random_bytes(nullptr, 0);
}

TEST(RandomTest, ValuesDiffer) {
  std::set<uint64_t> seen;
  for (int i = 0; i < 32; ++i) seen.insert(random_u64());
  EXPECT_EQ(seen.size(), 32u);
}

}  // namespace
}  // namespace sag::base
