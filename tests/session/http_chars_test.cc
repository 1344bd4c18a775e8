// HTTP character classes (session/http_chars.h): the block- and word-at-a-time checks
// (values, token names, CR/LF search) agree with their byte-by-byte
// definitions at every length and offset.
#include "session/http_chars.h"

#include <gtest/gtest.h>

#include <cctype>
#include <random>
#include <string>

namespace sag::session {
namespace {

bool slow_all_value_bytes(std::string_view s) {
  for (unsigned char c : s)
    if (!is_value_byte(c)) return false;
  return true;
}

size_t slow_token_length(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && is_tchar(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

size_t slow_find_cr_or_lf(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == '\r' || s[i] == '\n') return i;
  return s.size();
}

size_t slow_value_run(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (!is_value_byte(static_cast<unsigned char>(s[i]))) return i;
  return s.size();
}

// value_run stops at the first byte that is no value byte, whatever its
// value, lane, block or word, at every length up to 40; tabs (flagged by
// the block and word checks, but value bytes) anywhere before it are
// stepped over.
TEST(HttpCharsTest, ValueRunStopsAtTheFirstNonValueByteInEveryLane) {
  for (size_t size = 0; size <= 40; ++size) {
    EXPECT_EQ(value_run(std::string(size, 'v')), size) << size;
    for (size_t at = 0; at < size; ++at) {
      for (int c = 0; c < 256; ++c) {
        std::string s(size, 'v');
        s[at] = static_cast<char>(c);
        ASSERT_EQ(value_run(s), slow_value_run(s)) << c << " at " << at << " of " << size;
      }
      for (size_t tab = 0; tab < at; tab += 3) {
        std::string s(size, 'v');
        s[tab] = '\t';
        s[at] = '\r';
        ASSERT_EQ(value_run(s), at) << "tab at " << tab << ", CR at " << at << " of " << size;
      }
    }
  }
  std::mt19937 rng(7);
  const char pool[] = {'a', ' ', '\t', '\t', '~', '\x80', '\r', '\x7f', '\0', 'z'};
  for (int round = 0; round < 20000; ++round) {
    std::string s(rng() % 48, 'x');
    for (auto& c : s) c = rng() % 6 == 0 ? pool[rng() % sizeof pool] : 'x';
    ASSERT_EQ(value_run(s), slow_value_run(s)) << ::testing::PrintToString(s);
  }
}

TEST(HttpCharsTest, EveryByteClassIsAsRfc9110Says) {
  for (int c = 0; c < 256; ++c) {
    const bool value = c == '\t' || (c >= 0x20 && c != 0x7f);
    EXPECT_EQ(is_value_byte(static_cast<unsigned char>(c)), value) << c;
    const std::string one(1, static_cast<char>(c));
    EXPECT_EQ(all_value_bytes(one), value) << c;
    // The same byte in every lane of a word or a 16-byte block (the first,
    // a middle one, the overlapping last), among good bytes.
    for (size_t size : {17, 40}) {
      for (size_t at = 0; at < size; ++at) {
        std::string s(size, 'a');
        s[at] = static_cast<char>(c);
        EXPECT_EQ(all_value_bytes(s), value) << c << " at " << at << " of " << size;
      }
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

// Every byte value in every lane of a long name: the token length stops
// exactly at the first non-token byte, and the CR/LF search finds exactly
// the first CR or LF (bytes that differ from them by one bit, or sit next
// to them in the alphabet, included).
TEST(HttpCharsTest, TokenLengthAndLineBreakSearchAtEveryLane) {
  for (int c = 0; c < 256; ++c) {
    for (size_t at = 0; at < 24; ++at) {
      std::string s = "X-Forwarded-Proto-Extra-";
      s[at] = static_cast<char>(c);
      const size_t want = is_tchar(static_cast<unsigned char>(c)) ? s.size() : at;
      EXPECT_EQ(token_length(s), want) << c << " at " << at;
      EXPECT_EQ(find_cr_or_lf(s), c == '\r' || c == '\n' ? at : s.size()) << c << " at " << at;
    }
  }
  // Past the first 16-byte block and into the word and byte tails.
  for (int c = 0; c < 256; ++c) {
    for (size_t at = 0; at < 43; ++at) {
      std::string s(43, 'm');
      s[at] = static_cast<char>(c);
      EXPECT_EQ(find_cr_or_lf(s), c == '\r' || c == '\n' ? at : s.size()) << c << " at " << at;
      EXPECT_EQ(token_length(s), is_tchar(static_cast<unsigned char>(c)) ? s.size() : at)
          << c << " at " << at;
    }
  }
  EXPECT_EQ(find_cr_or_lf("Host: a\r\n"), 7u);
  EXPECT_EQ(find_cr_or_lf("a\nb\rc"), 1u);
  EXPECT_EQ(find_cr_or_lf(""), 0u);
}

// Every length up to 40 and every position: a name equals its lowercase
// whatever the case of each letter, and no name one byte off does.
TEST(HttpCharsTest, EqualsLowercaseComparesEveryByte) {
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-";
  for (size_t n = 0; n <= 40; ++n) {
    std::string lower(n, 'a');
    for (size_t i = 0; i < n; ++i) lower[i] = alphabet[(i * 7 + n) % alphabet.size()];
    std::string mixed = lower;
    for (size_t i = 0; i < n; i += 2)
      mixed[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(mixed[i])));
    EXPECT_TRUE(equals_lowercase(lower, lower)) << lower;
    EXPECT_TRUE(equals_lowercase(mixed, lower)) << mixed;
    for (size_t at = 0; at < n; ++at) {
      std::string off = mixed;
      off[at] = lower[at] == 'q' ? 'z' : 'q';
      EXPECT_FALSE(equals_lowercase(off, lower)) << off << " against " << lower;
    }
  }
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
    EXPECT_EQ(token_length(s), slow_token_length(s)) << ::testing::PrintToString(s);
    EXPECT_EQ(find_cr_or_lf(s), slow_find_cr_or_lf(s)) << ::testing::PrintToString(s);
  }
  // Names: mostly name bytes, with every other token byte and separators.
  const std::string name_alphabet = "azAZ09-mM5!#$%&'*+.^_`|~:; \t\r\n@[{\x7f\x80";
  for (int round = 0; round < 20000; ++round) {
    std::string s(rng() % 40, 'a');
    for (auto& ch : s) ch = name_alphabet[rng() % (rng() % 4 == 0 ? name_alphabet.size() : 9)];
    EXPECT_EQ(token_length(s), slow_token_length(s)) << ::testing::PrintToString(s);
    EXPECT_EQ(find_cr_or_lf(s), slow_find_cr_or_lf(s)) << ::testing::PrintToString(s);
  }
}

}  // namespace
}  // namespace sag::session
