#include "config/base/hex.h"

#include <gtest/gtest.h>

#include <string>

namespace sag::base {
namespace {

using namespace std::string_literals;

TEST(HexTest, Value) {
  static_assert(hex_value('0') == 0 && hex_value('9') == 9);
  static_assert(hex_value('a') == 10 && hex_value('F') == 15);
  for (char c : "gG/:@`xz \x00\xff"s) EXPECT_EQ(hex_value(c), -1) << int(c);
}

TEST(HexTest, Encode) {
  EXPECT_EQ(hex_encode(""), "");
  EXPECT_EQ(hex_encode("\x00\x7f\xab\xff"s), "007fabff");
  EXPECT_EQ(hex_encode("\x00\x7f\xab\xff"s, HexCase::kUpper), "007FABFF");
  std::string out = "%";
  append_hex_byte(out, 0x2f, HexCase::kUpper);
  EXPECT_EQ(out, "%2F");
}

TEST(HexTest, DecodeRoundTrips) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  EXPECT_EQ(hex_decode(hex_encode(all)), all);
  EXPECT_EQ(hex_decode(hex_encode(all, HexCase::kUpper)), all);
  EXPECT_EQ(hex_decode("aB0f"), "\xab\x0f"s);
}

TEST(HexTest, DecodeRefuses) {
  EXPECT_FALSE(hex_decode("abc"));  // odd length
  EXPECT_FALSE(hex_decode("0g"));
  EXPECT_FALSE(hex_decode(" 00"));
  EXPECT_FALSE(hex_decode("0x00"));
  EXPECT_EQ(hex_decode(""), "");
}

}  // namespace
}  // namespace sag::base
