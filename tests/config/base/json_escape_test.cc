// The one JSON string writer (access log lines, admin API bodies).
#include "config/base/json_escape.h"

#include <gtest/gtest.h>

#include <string>

namespace sag::base {
namespace {

using namespace std::string_literals;

std::string json(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

TEST(JsonEscapeTest, Escapes) {
  EXPECT_EQ(json(""), R"("")");
  EXPECT_EQ(json("plain s1-a.b:c"), R"("plain s1-a.b:c")");
  EXPECT_EQ(json("a\"b\\c/d"), R"("a\"b\\c/d")");
  EXPECT_EQ(json("\n\r\t\b\f"), R"("\u000a\u000d\u0009\u0008\u000c")");
  EXPECT_EQ(json("\x00\x01\x1f\x7f"s), R"("\u0000\u0001\u001f\u007f")");
  EXPECT_EQ(json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
}

TEST(JsonEscapeTest, Appends) {
  std::string out = "x";
  append_json_string(out, "y");
  EXPECT_EQ(out, "x\"y\"");
}

// Bytes outside well-formed UTF-8 keep their value as \u00XX (the Latin-1
// reading), one escape per byte, and the output stays valid UTF-8.
TEST(JsonEscapeTest, InvalidUtf8BytesBecomeLatin1Escapes) {
  EXPECT_EQ(json("a\xff" "b"), R"("a\u00ffb")");
  EXPECT_EQ(json("\xc3"), R"("\u00c3")");                              // truncated
  EXPECT_EQ(json("\xc3(x"), R"("\u00c3(x")");                          // bad continuation
  EXPECT_EQ(json("\xc0\x80"), R"("\u00c0\u0080")");                    // overlong NUL
  EXPECT_EQ(json("\xed\xa0\x80"), R"("\u00ed\u00a0\u0080")");          // surrogate
  EXPECT_EQ(json("\xf4\x90\x80\x80"), R"("\u00f4\u0090\u0080\u0080")");  // > U+10FFFF
  EXPECT_EQ(json("\xe0\x80\xaf"), R"("\u00e0\u0080\u00af")");          // overlong
  EXPECT_EQ(json("\x80"), R"("\u0080")");                              // lone continuation
  EXPECT_EQ(json("caf\xe9"), R"("caf\u00e9")");
  EXPECT_EQ(json("\xc3\xa9\xc3"), "\"\xc3\xa9\\u00c3\"");
}

TEST(JsonEscapeTest, Utf8SequenceLength) {
  EXPECT_EQ(utf8_sequence_length(""), 0u);
  EXPECT_EQ(utf8_sequence_length("a"), 0u);
  EXPECT_EQ(utf8_sequence_length("\xc3\xa9x"), 2u);
  EXPECT_EQ(utf8_sequence_length("\xe2\x82\xac"), 3u);
  EXPECT_EQ(utf8_sequence_length("\xf0\x9f\x98\x80"), 4u);
  EXPECT_EQ(utf8_sequence_length("\xf4\x8f\xbf\xbf"), 4u);  // U+10FFFF
  EXPECT_EQ(utf8_sequence_length("\xf4\x90\x80\x80"), 0u);
  EXPECT_EQ(utf8_sequence_length("\xed\x9f\xbf"), 3u);      // U+D7FF
  EXPECT_EQ(utf8_sequence_length("\xed\xa0\x80"), 0u);      // U+D800
  EXPECT_EQ(utf8_sequence_length("\xc1\xbf"), 0u);          // overlong
  EXPECT_EQ(utf8_sequence_length("\xe2\x82"), 0u);          // truncated
}

}  // namespace
}  // namespace sag::base
