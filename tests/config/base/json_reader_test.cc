#include "config/base/json_reader.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace sag::base {
namespace {

std::optional<std::string> str(std::string_view json) {
  JsonReader r(json);
  std::string out;
  if (!r.string(out) || !r.at_end()) return std::nullopt;
  return out;
}

TEST(JsonReaderTest, Strings) {
  EXPECT_EQ(str(R"("")"), "");
  EXPECT_EQ(str(R"("a\"b\\c\/d\b\f\n\r\t")"), "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(str(R"("dr\u0061in")"), "drain");
  EXPECT_EQ(str(R"("\u00e9\u20AC")"), "\xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(str(R"("\ud83d\ude00")"), "\xf0\x9f\x98\x80");
  EXPECT_EQ(str("\"caf\xc3\xa9\""), "caf\xc3\xa9");  // raw UTF-8 passes
  for (std::string_view bad : {R"("abc)", R"("\x")", R"("\u12")", R"("\u12g4")", R"("\ud800")",
                               R"("\udc00")", R"("\ud800\u0041")", "\"a\nb\"", R"(abc)"})
    EXPECT_FALSE(str(bad)) << bad;
}

TEST(JsonReaderTest, Numbers) {
  auto num = [](std::string_view s, uint64_t& v, bool& neg) {
    JsonReader r(s);
    return r.number(v, neg);
  };
  uint64_t v;
  bool neg;
  EXPECT_EQ(num("0", v, neg), JsonReader::Number::kInteger);
  EXPECT_EQ(v, 0u);
  EXPECT_EQ(num("-0", v, neg), JsonReader::Number::kInteger);
  EXPECT_TRUE(neg);
  EXPECT_EQ(num("1000", v, neg), JsonReader::Number::kInteger);
  EXPECT_EQ(v, 1000u);
  EXPECT_FALSE(neg);
  EXPECT_EQ(num("99999999999999999999999", v, neg), JsonReader::Number::kInteger);
  EXPECT_EQ(v, UINT64_MAX);
  EXPECT_EQ(num("1.5", v, neg), JsonReader::Number::kNotInteger);
  EXPECT_EQ(num("1e3", v, neg), JsonReader::Number::kNotInteger);
  EXPECT_EQ(num("1E+3", v, neg), JsonReader::Number::kNotInteger);
  for (std::string_view bad : {"007", "-", "1.", ".5", "1e", "+1", "-a"})
    EXPECT_EQ(num(bad, v, neg), JsonReader::Number::kMalformed) << bad;
}

TEST(JsonReaderTest, Punctuation) {
  JsonReader r(" \t\r\n{ } ");
  r.skip_ws();
  EXPECT_EQ(r.peek(), '{');
  EXPECT_FALSE(r.eat('}'));
  EXPECT_TRUE(r.eat('{'));
  r.skip_ws();
  EXPECT_TRUE(r.eat('}'));
  EXPECT_FALSE(r.at_end());
  r.skip_ws();
  EXPECT_TRUE(r.at_end());
  EXPECT_EQ(r.peek(), '\0');
  EXPECT_FALSE(r.eat('\0'));
}

}  // namespace
}  // namespace sag::base
