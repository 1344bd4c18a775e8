// The value forms: whole numbers, durations, sizes, status ranges (the
// loader's messages and positions for them are in config_loader_test.cc).
#include "config/units.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

namespace sag::config {
namespace {

using std::chrono::milliseconds;

TEST(UnitsDigits, AcceptsPlainDigitsOnly) {
  EXPECT_EQ(parse_digits("0"), 0u);
  EXPECT_EQ(parse_digits("007"), 7u);
  EXPECT_EQ(parse_digits("18446744073709551615"), UINT64_MAX);
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "0x1F", "1_000", "1e3", "1.0", "18446744073709551616"})
    EXPECT_FALSE(parse_digits(bad)) << bad;
}

TEST(UnitsDigits, LeadingDigits) {
  EXPECT_EQ(leading_digits(""), 0u);
  EXPECT_EQ(leading_digits("ms"), 0u);
  EXPECT_EQ(leading_digits("250ms"), 3u);
  EXPECT_EQ(leading_digits("16KiB"), 2u);
  EXPECT_EQ(leading_digits("123"), 3u);
}

TEST(UnitsDuration, EachUnit) {
  EXPECT_EQ(parse_duration("1ms"), milliseconds(1));
  EXPECT_EQ(parse_duration("1s"), milliseconds(1000));
  EXPECT_EQ(parse_duration("1m"), milliseconds(60'000));
  EXPECT_EQ(parse_duration("1h"), milliseconds(3'600'000));
  EXPECT_EQ(parse_duration("0h"), milliseconds(0));
}

TEST(UnitsDuration, BareNumberOnlyForZero) {
  EXPECT_EQ(parse_duration("0"), milliseconds(0));
  EXPECT_EQ(parse_duration("000"), milliseconds(0));
  EXPECT_FALSE(parse_duration("1"));
  EXPECT_FALSE(parse_duration("1000"));
}

TEST(UnitsDuration, CapsAtHalfOfInt64Nanoseconds) {
  // 4611686018427 ms is the largest; every unit overflows past it.
  EXPECT_EQ(parse_duration("4611686018s"), milliseconds(4611686018000));
  EXPECT_FALSE(parse_duration("4611686019s"));
  EXPECT_EQ(parse_duration("76861433m"), milliseconds(int64_t{76861433} * 60'000));
  EXPECT_FALSE(parse_duration("76861434m"));
  EXPECT_EQ(parse_duration("1281023h"), milliseconds(int64_t{1281023} * 3'600'000));
  EXPECT_FALSE(parse_duration("1281024h"));
}

TEST(UnitsSize, EachUnit) {
  EXPECT_EQ(parse_size("1"), 1u);
  EXPECT_EQ(parse_size("1KiB"), 1024u);
  EXPECT_EQ(parse_size("1MiB"), 1024u * 1024);
  EXPECT_EQ(parse_size("2GiB"), uint64_t{2} << 30);
  EXPECT_EQ(parse_size("0GiB"), 0u);
}

TEST(UnitsSize, RejectsOverflowAndOtherSpellings) {
  EXPECT_EQ(parse_size("18014398509481983KiB"), uint64_t{18014398509481983} << 10);
  EXPECT_FALSE(parse_size("18014398509481984KiB"));
  for (const char* bad : {"1K", "1M", "1G", "1kB", "1MB", "1 MiB", "MiB", "1MiB ", "1.0KiB"})
    EXPECT_FALSE(parse_size(bad)) << bad;
}

TEST(UnitsStatusRange, Accepts) {
  using Range = std::pair<uint16_t, uint16_t>;
  EXPECT_EQ(parse_status_range("200"), (Range{200, 200}));
  EXPECT_EQ(parse_status_range("200-399"), (Range{200, 399}));
  EXPECT_EQ(parse_status_range("100-599"), (Range{100, 599}));
  EXPECT_EQ(parse_status_range("204-204"), (Range{204, 204}));
}

TEST(UnitsStatusRange, Rejects) {
  for (const char* bad : {"", "-", "20", "2000", "099", "600", "100-600", "399-200", "200-", "-399", "200 - 399",
                          "2x0", "200-3x9", "+20", "200-399-500"})
    EXPECT_FALSE(parse_status_range(bad)) << bad;
}

}  // namespace
}  // namespace sag::config
