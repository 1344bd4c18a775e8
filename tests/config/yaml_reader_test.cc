// YamlReader: typed getters, the position of every error, unknown and
// duplicate keys, and the quoting of values echoed into messages. No schema
// here: the keys are made up.
#include "config/yaml_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace sag::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using std::chrono::milliseconds;

std::vector<std::string> errors_of(ErrorLog& log) {
  std::vector<std::string> out;
  for (const auto& e : log.take_sorted()) out.push_back(e.to_string());
  return out;
}

enum class Color { kRed, kGreen };

TEST(YamlReader, GoodValues) {
  ErrorLog log("t.yaml");
  const YAML::Node doc = YAML::Load(
      "name: web\n"
      "flag: false\n"
      "count: 42\n"
      "wait: 250ms\n"
      "size: 16KiB\n"
      "color: green\n"
      "empty:\n"
      "items: [a, b]\n");
  {
    YamlReader r(log, doc, {1, 1}, "");
    ASSERT_TRUE(r.ok());
    std::string name, empty = "x";
    bool flag = true;
    uint32_t count = 0;
    milliseconds wait{};
    uint64_t size = 0;
    Color color = Color::kRed;
    EXPECT_TRUE(r.read("name", name));
    EXPECT_TRUE(r.read("flag", flag));
    EXPECT_TRUE(r.read_uint("count", count, 1, 100));
    EXPECT_TRUE(r.read_positive("wait", wait));
    EXPECT_TRUE(r.read_size("size", size, 1));
    EXPECT_TRUE(r.read_enum("color", color, {{"red", Color::kRed}, {"green", Color::kGreen}}));
    EXPECT_TRUE(r.read("empty", empty));
    auto items = r.list("items");
    EXPECT_EQ(name, "web");
    EXPECT_FALSE(flag);
    EXPECT_EQ(count, 42u);
    EXPECT_EQ(wait, milliseconds(250));
    EXPECT_EQ(size, 16u * 1024);
    EXPECT_EQ(color, Color::kGreen);
    EXPECT_EQ(empty, "");
    ASSERT_TRUE(items);
    EXPECT_EQ(items->size(), 2u);
  }
  EXPECT_THAT(errors_of(log), IsEmpty());
}

TEST(YamlReader, AbsentKeysLeaveDefaults) {
  ErrorLog log("t.yaml");
  const YAML::Node doc = YAML::Load("other: 1\n");
  {
    YamlReader r(log, doc, {1, 1}, "");
    uint32_t n = 7;
    milliseconds d{9};
    EXPECT_FALSE(r.read_uint("n", n, 0, 10));
    EXPECT_FALSE(r.read("d", d));
    EXPECT_FALSE(r.list("l"));
    EXPECT_EQ(n, 7u);
    EXPECT_EQ(d, milliseconds(9));
    EXPECT_TRUE(r.has("other"));
  }
  EXPECT_THAT(errors_of(log), IsEmpty());
}

TEST(YamlReader, BadValuesAtTheirPosition) {
  ErrorLog log("t.yaml");
  const YAML::Node doc = YAML::Load(
      "flag: yes\n"
      "count: 200\n"
      "neg: -3\n"
      "word: many\n"
      "wait: 5\n"
      "zero: 0s\n"
      "size: 1KB\n"
      "small: 0\n"
      "color: blue\n"
      "items: {a: 1}\n"
      "text: [x]\n"
      "none:\n");
  {
    YamlReader r(log, doc, {1, 1}, "section 'x'");
    bool flag = false;
    uint32_t n = 0;
    milliseconds d{};
    uint64_t size = 0;
    Color color = Color::kRed;
    std::string text;
    EXPECT_FALSE(r.read("flag", flag));
    EXPECT_FALSE(r.read_uint("count", n, 1, 100));
    EXPECT_FALSE(r.read_uint("neg", n, 0, 100));
    EXPECT_FALSE(r.read_uint("word", n, 0, 100));
    EXPECT_FALSE(r.read("wait", d));
    EXPECT_FALSE(r.read_positive("zero", d));
    EXPECT_FALSE(r.read_size("size", size));
    EXPECT_FALSE(r.read_size("small", size, 1));
    EXPECT_FALSE(r.read_enum("color", color, {{"red", Color::kRed}, {"green", Color::kGreen}}));
    EXPECT_FALSE(r.list("items"));
    EXPECT_FALSE(r.read("text", text));
    EXPECT_FALSE(r.read_uint("none", n, 0, 100));
  }
  EXPECT_THAT(errors_of(log),
              ElementsAre("t.yaml:1:7: 'flag': expected true or false, got 'yes'",
                          "t.yaml:2:8: 'count': 200 is out of range (1..100)",
                          "t.yaml:3:6: 'neg': must not be negative, got -3",
                          "t.yaml:4:7: 'word': expected a whole number, got 'many'",
                          "t.yaml:5:7: 'wait': bad duration '5' (use e.g. 250ms, 5s, 30m, 8h)",
                          "t.yaml:6:7: 'zero': must be more than 0",
                          "t.yaml:7:7: 'size': bad size '1KB' (use e.g. 512, 16KiB, 1MiB, 1GiB)",
                          "t.yaml:8:8: 'small': must be at least 1 bytes",
                          "t.yaml:9:8: 'color': unknown value 'blue' (use red, green)",
                          "t.yaml:10:8: 'items': expected a list, got a map",
                          "t.yaml:11:7: 'text': expected a string, got a list",
                          "t.yaml:12:1: 'none': missing value (expected a whole number)"));
}

TEST(YamlReader, RequiredKeys) {
  ErrorLog log("t.yaml");
  const YAML::Node doc = YAML::Load("a: web\nb: \"\"\n");
  {
    YamlReader r(log, doc, {1, 1}, "backend 'app'");
    EXPECT_EQ(r.required("a"), "web");
    EXPECT_FALSE(r.required("b"));
    EXPECT_FALSE(r.required("c"));
    r.missing("d", " (hint)");
  }
  EXPECT_THAT(errors_of(log), ElementsAre("t.yaml:1:1: missing required key 'c' in backend 'app'",
                                          "t.yaml:1:1: missing required key 'd' in backend 'app' (hint)",
                                          "t.yaml:2:4: 'b' must not be empty"));
}

TEST(YamlReader, UnknownKeysWithSuggestions) {
  ErrorLog log("t.yaml");
  const YAML::Node doc = YAML::Load(
      "timeout: 1s\n"
      "retires: 2\n"
      "zzzzzz: 1\n"
      "x: 1\n");
  {
    YamlReader r(log, doc, {1, 1}, "");
    milliseconds d{};
    uint32_t n = 0;
    r.read("timeout", d);
    r.read_uint("retries", n, 0, 10);
    r.has("y");  // asked for, so a suggestion; one letter is never "close"
  }
  EXPECT_THAT(errors_of(log),
              ElementsAre("t.yaml:2:1: unknown key 'retires' at the top level (did you mean 'retries'?)",
                          "t.yaml:3:1: unknown key 'zzzzzz' at the top level",
                          "t.yaml:4:1: unknown key 'x' at the top level"));
}

TEST(YamlReader, KeysAskedForButAbsentOrPresentAreKnown) {
  ErrorLog log("t.yaml");
  const YAML::Node doc = YAML::Load("a: 1\nb: 2\n");
  {
    YamlReader r(log, doc, {1, 1}, "");
    EXPECT_TRUE(r.has("a"));  // known without being read
    EXPECT_TRUE(r.get("b"));
  }
  EXPECT_THAT(errors_of(log), IsEmpty());
}

TEST(YamlReader, DuplicateKeysNameTheFirst) {
  ErrorLog log("t.yaml");
  const YAML::Node doc = YAML::Load("a: 1\nb: 2\na: 3\n");
  uint32_t a = 0;
  {
    YamlReader r(log, doc, {1, 1}, "");
    r.read_uint("a", a, 0, 10);
    r.has("b");
    r.rename("listener 'web'");  // duplicates are reported under the final name
  }
  EXPECT_EQ(a, 1u);
  EXPECT_THAT(errors_of(log), ElementsAre("t.yaml:3:1: duplicate key 'a' in listener 'web' (first at line 1)"));
}

TEST(YamlReader, NotAMap) {
  ErrorLog log("t.yaml");
  const YAML::Node doc = YAML::Load("section: [1, 2]\ntop: 1\n");
  {
    YamlReader r(log, doc, {1, 1}, "");
    YamlReader c = r.child("section", "'section'");
    EXPECT_FALSE(c.ok());
    EXPECT_FALSE(c.has("x"));
    r.has("top");
  }
  {
    YamlReader top(log, YAML::Load("just text"), {1, 1}, "");
    EXPECT_FALSE(top.ok());
  }
  EXPECT_THAT(errors_of(log), ElementsAre("t.yaml:1:1: the top level must be a map (key: value), not a value",
                                          "t.yaml:1:10: 'section' must be a map (key: value), not a list"));
}

TEST(YamlReader, EmptyChildPointsAtItsKey) {
  ErrorLog log("t.yaml");
  // A null value's own mark is the next token's; the reader points at the key.
  const YAML::Node doc = YAML::Load("section:\nother: 1\n");
  {
    YamlReader r(log, doc, {1, 1}, "");
    {
      YamlReader c = r.child("section", "'section'");
      EXPECT_TRUE(c.ok());
      EXPECT_EQ(c.pos().line, 1);
      EXPECT_EQ(c.pos().column, 1);
      c.missing("name");
    }
    YamlReader absent = r.child("absent", "'absent'");
    EXPECT_TRUE(absent.ok());
    r.has("other");
  }
  EXPECT_THAT(errors_of(log), ElementsAre("t.yaml:1:1: missing required key 'name' in 'section'"));
}

TEST(YamlReader, NestedUnknownKeysReportedOnce) {
  ErrorLog log("t.yaml");
  const YAML::Node doc = YAML::Load("outer:\n  inner: 1\n  bogus: 2\n");
  {
    YamlReader r(log, doc, {1, 1}, "");
    YamlReader moved = r.child("outer", "'outer'");
    YamlReader again(std::move(moved));  // only the last owner reports
    uint32_t n = 0;
    again.read_uint("inner", n, 0, 5);
  }
  EXPECT_THAT(errors_of(log), ElementsAre("t.yaml:3:3: unknown key 'bogus' in 'outer'"));
}

TEST(YamlReader, NonScalarKeys) {
  ErrorLog log("t.yaml");
  const YAML::Node doc = YAML::Load("? [a, b]\n: 1\nc: 2\n");
  {
    YamlReader r(log, doc, {1, 1}, "");
    r.has("c");
  }
  EXPECT_THAT(errors_of(log), ElementsAre("t.yaml:1:3: keys must be plain names at the top level"));
}

TEST(YamlReader, Positions) {
  ErrorLog log("t.yaml");
  const YAML::Node doc = YAML::Load("a:\n  b: 1\nc:\n");
  YamlReader r(log, doc, {1, 1}, "");
  EXPECT_EQ(r.at("a").line, 2);  // the value
  EXPECT_EQ(r.at("a").column, 3);
  EXPECT_EQ(r.key_at("a").line, 1);
  EXPECT_EQ(r.at("c").line, 3);  // empty value: its key
  EXPECT_EQ(r.at("c").column, 1);
  EXPECT_EQ(r.at("zz").line, 1);  // absent: the map
  r.has("a");
  r.has("c");
}

TEST(YamlQuote, EscapesAndCuts) {
  EXPECT_EQ(quote("plain"), "'plain'");
  EXPECT_EQ(quote("a\nb\tc\rd\x01\x7f"), "'a\\nb\\tc\\rd\\x01\\x7f'");
  EXPECT_EQ(quote(std::string(100, 'x')), "'" + std::string(80, 'x') + "...'");
  // Cut on a whole UTF-8 character: 79 bytes, then a 2-byte 'é' that would
  // straddle the limit.
  EXPECT_EQ(quote(std::string(79, 'x') + "\xc3\xa9" + "yy"), "'" + std::string(79, 'x') + "...'");
  EXPECT_EQ(quote_path(std::string(100, 'x')), "'" + std::string(100, 'x') + "'");
}

TEST(YamlKind, Names) {
  EXPECT_STREQ(kind_of(YAML::Load("{a: 1}")), "a map");
  EXPECT_STREQ(kind_of(YAML::Load("[1]")), "a list");
  EXPECT_STREQ(kind_of(YAML::Load("~")), "nothing");
  EXPECT_STREQ(kind_of(YAML::Load("x")), "a value");
}

TEST(ErrorLog, SortsByPositionKeepingReportOrder) {
  ErrorLog log("f.yaml");
  log.error({3, 1}, "c");
  log.error({1, 5}, "b");
  log.error({1, 5}, "b2");
  log.error({}, "none");
  log.error({1, 1}, "a");
  EXPECT_THAT(errors_of(log), ElementsAre("f.yaml: none", "f.yaml:1:1: a", "f.yaml:1:5: b", "f.yaml:1:5: b2",
                                          "f.yaml:3:1: c"));
  EXPECT_TRUE(log.empty());
}

}  // namespace
}  // namespace sag::config
