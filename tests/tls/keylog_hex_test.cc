// tls/keylog_hex.h: the fortified sprintf the gateway defines writes what
// glibc's would, binds ahead of glibc's, and keeps glibc's overflow check.
#include "tls/keylog_hex.h"

#include <gtest/gtest.h>

#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <string>

extern "C" int __sprintf_chk(char* __restrict s, int flag, size_t slen,
                             const char* __restrict format, ...) noexcept;

namespace sag::tls {
namespace {

TEST(KeylogHexTest, BindsAheadOfGlibc) { EXPECT_TRUE(keylog_hex_bound()); }

TEST(KeylogHexTest, EveryByteAsGlibcWritesIt) {
  for (unsigned v = 0; v < 256; ++v) {
    char got[8] = "xxxxxxx", want[8];
    std::snprintf(want, sizeof want, "%02x", v);
    EXPECT_EQ(__sprintf_chk(got, 1, sizeof got, "%02x", v), 2);
    EXPECT_EQ(std::string(got), want) << v;
    EXPECT_EQ(got[3], 'x') << "wrote past the terminator";
  }
}

TEST(KeylogHexTest, OtherValuesAndFormatsGoToGlibc) {
  char buf[64];
  EXPECT_EQ(__sprintf_chk(buf, 1, sizeof buf, "%02x", 0x1234u), 4);
  EXPECT_STREQ(buf, "1234");
  EXPECT_EQ(__sprintf_chk(buf, 1, sizeof buf, "%02x", 0xffffffffu), 8);
  EXPECT_STREQ(buf, "ffffffff");
  EXPECT_EQ(__sprintf_chk(buf, 1, sizeof buf, "%02X", 0xabu), 2);
  EXPECT_STREQ(buf, "AB");
  EXPECT_EQ(__sprintf_chk(buf, 1, sizeof buf, "%02x%s", 0xabu, "-z"), 4);
  EXPECT_STREQ(buf, "ab-z");
  EXPECT_EQ(__sprintf_chk(buf, 1, sizeof buf, "%d %s", 7, "x"), 3);
  EXPECT_STREQ(buf, "7 x");
  // (size_t)-1: the compiler did not know the size.
  EXPECT_EQ(__sprintf_chk(buf, 1, static_cast<size_t>(-1), "%02x", 0x0fu), 2);
  EXPECT_STREQ(buf, "0f");
}

// glibc fails the check (and so does ASan's interceptor, which writes
// through to a real overflow of these exact-size buffers).
TEST(KeylogHexDeathTest, TooSmallADestinationStillFailsTheCheck) {
  EXPECT_DEATH(
      {
        char two[2];
        volatile size_t n = sizeof two;  // (no compile-time overflow warning)
        __sprintf_chk(two, 1, n, "%02x", 0xabu);
      },
      "");
  EXPECT_DEATH(
      {
        char three[3];
        volatile size_t n = sizeof three;
        __sprintf_chk(three, 1, n, "%02x", 0x1234u);
      },
      "");
}

}  // namespace
}  // namespace sag::tls
