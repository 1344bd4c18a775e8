// HTTP character classes (session/http_chars.h): the word-at-a-time value
// check agrees with the byte-by-byte definition at every length and offset.
#include "session/http_chars.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace sag::session {
namespace {

bool slow_all_value_bytes(std::string_view s) {
  for (unsigned char c : s)
    if (!is_value_byte(c)) return false;
  return true;
}

TEST(HttpCharsTest, EveryByteClassIsAsRfc9110Says) {
  for (int c = 0; c < 256; ++c) {
    const bool value = c == '\t' || (c >= 0x20 && c != 0x7f);
    EXPECT_EQ(is_value_byte(static_cast<unsigned char>(c)), value) << c;
    const std::string one(1, static_cast<char>(c));
    EXPECT_EQ(all_value_bytes(one), value) << c;
    // The same byte in every lane of a word, among good bytes.
    for (size_t at = 0; at < 17; ++at) {
      std::string s(17, 'a');
      s[at] = static_cast<char>(c);
      EXPECT_EQ(all_value_bytes(s), value) << c << " at " << at;
    }
  }
  EXPECT_TRUE(is_tchar('!'));
  EXPECT_TRUE(is_tchar('~'));
  EXPECT_TRUE(is_tchar('z'));
  EXPECT_FALSE(is_tchar(':'));
  EXPECT_FALSE(is_tchar(' '));
  EXPECT_FALSE(is_tchar(0));
  EXPECT_FALSE(is_tchar(0x80));
  EXPECT_EQ(token_length("Content-Type: x"), 12u);
  EXPECT_EQ(token_length(" x"), 0u);
}

TEST(HttpCharsTest, WordCheckMatchesByteCheckOnRandomStrings) {
  std::mt19937 rng(7);
  // Mostly printable bytes with tabs, obs-text and rare bad bytes, so both
  // answers come up often.
  const std::string alphabet = std::string("abcXYZ09 \t\x80\xff~:;") + '\x7f' + '\x1f' + '\0' + '\r';
  for (int round = 0; round < 20000; ++round) {
    std::string s(rng() % 40, 'a');
    for (auto& ch : s) {
      const unsigned pick = rng() % 100;
      ch = pick < 97 ? alphabet[rng() % 15] : alphabet[15 + rng() % 4];
    }
    EXPECT_EQ(all_value_bytes(s), slow_all_value_bytes(s)) << ::testing::PrintToString(s);
  }
}

}  // namespace
}  // namespace sag::session
