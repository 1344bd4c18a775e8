// find_cookie / remove_cookie / is_cookie_token (affinity/cookie/cookie_header.h).
#include "affinity/cookie/cookie_header.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

namespace sag::affinity {
namespace {

using std::string_view_literals::operator""sv;

TEST(FindCookie, FirstMiddleLast) {
  EXPECT_EQ(find_cookie("SRV=x; a=1; b=2", "SRV"), std::optional("x"sv));
  EXPECT_EQ(find_cookie("a=1; SRV=x; b=2", "SRV"), std::optional("x"sv));
  EXPECT_EQ(find_cookie("a=1; b=2; SRV=x", "SRV"), std::optional("x"sv));
  EXPECT_EQ(find_cookie("SRV=only", "SRV"), std::optional("only"sv));
  EXPECT_EQ(find_cookie("a=1; SRV=x; b=2", "a"), std::optional("1"sv));
  EXPECT_EQ(find_cookie("a=1; SRV=x; b=2", "b"), std::optional("2"sv));
}

// A header that is one pair (the shortcut) reads as any other pair does.
TEST(FindCookie, SinglePairShapes) {
  struct Case {
    const char* header;
    std::optional<std::string_view> want;
  };
  const Case cases[] = {
      {"SRV=abc", "abc"},        {"SRV=abc \t", "abc"}, {"SRV=\"abc\"", "abc"},
      {"SRV= \"a\" ", "a"},      {"SRV=", ""},           {"SRV==x", "=x"},
      {"SRV=a;", "a"},           {"SRV=a; SRV=b", "a"},  {" SRV=a", "a"},
      {"SRVX=a", std::nullopt}, {"SR=a", std::nullopt}, {"SRV", std::nullopt},
      {"srv=a", std::nullopt},  {"SRV=\"", "\""},       {"X=1; SRV=b", "b"},
  };
  for (const auto& c : cases) EXPECT_EQ(find_cookie(c.header, "SRV"), c.want) << c.header;
}

TEST(FindCookie, ValueIsAViewIntoTheHeader) {
  const std::string header = "a=1; SRV=abc; b=2";
  auto v = find_cookie(header, "SRV");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->data(), header.data() + 9);
  EXPECT_EQ(v->size(), 3u);
}

TEST(FindCookie, SpacesAndSeparators) {
  EXPECT_EQ(find_cookie("a=1;SRV=x;b=2", "SRV"), std::optional("x"sv));
  EXPECT_EQ(find_cookie("  a=1 ;   SRV=x   ; b=2", "SRV"), std::optional("x"sv));
  EXPECT_EQ(find_cookie("a=1;\tSRV=x\t", "SRV"), std::optional("x"sv));
  EXPECT_EQ(find_cookie("a=1; SRV = x", "SRV"), std::optional("x"sv));
  EXPECT_EQ(find_cookie(";;; SRV=x;;", "SRV"), std::optional("x"sv));
  EXPECT_EQ(find_cookie("a=1; SRV=x;", "SRV"), std::optional("x"sv));
}

TEST(FindCookie, QuotedValueIsUnquoted) {
  EXPECT_EQ(find_cookie("a=1; SRV=\"abc\"; b=2", "SRV"), std::optional("abc"sv));
  EXPECT_EQ(find_cookie("SRV=\"\"", "SRV"), std::optional(""sv));
  // A lone quote is not a quoted string.
  EXPECT_EQ(find_cookie("SRV=\"", "SRV"), std::optional("\""sv));
}

TEST(FindCookie, ValueMayContainEquals) {
  EXPECT_EQ(find_cookie("SRV=a=b==; x=1", "SRV"), std::optional("a=b=="sv));
}

TEST(FindCookie, NameThatIsAPrefixOrSuffixOfAnother) {
  EXPECT_EQ(find_cookie("SRVX=1; SRV=2", "SRV"), std::optional("2"sv));
  EXPECT_EQ(find_cookie("XSRV=1; SRV=2", "SRV"), std::optional("2"sv));
  EXPECT_EQ(find_cookie("SRV=2; SRVX=1", "SRVX"), std::optional("1"sv));
  EXPECT_EQ(find_cookie("SRVX=1; XSRV=3", "SRV"), std::nullopt);
  EXPECT_EQ(find_cookie("SR=1", "SRV"), std::nullopt);
}

TEST(FindCookie, NamesAreCaseSensitive) {
  EXPECT_EQ(find_cookie("srv=1", "SRV"), std::nullopt);
  EXPECT_EQ(find_cookie("srv=1; SRV=2", "SRV"), std::optional("2"sv));
}

TEST(FindCookie, FirstOfDuplicatesWins) {
  EXPECT_EQ(find_cookie("SRV=first; a=1; SRV=second", "SRV"), std::optional("first"sv));
}

TEST(FindCookie, EmptyValueIsPresent) {
  auto v = find_cookie("a=1; SRV=; b=2", "SRV");
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, "");
}

TEST(FindCookie, AbsentAndEmptyHeader) {
  EXPECT_EQ(find_cookie("a=1; b=2", "SRV"), std::nullopt);
  EXPECT_EQ(find_cookie("", "SRV"), std::nullopt);
  EXPECT_EQ(find_cookie("   ", "SRV"), std::nullopt);
  EXPECT_EQ(find_cookie(";", "SRV"), std::nullopt);
}

TEST(FindCookie, PairsWithoutEqualsAreNotNamedCookies) {
  // "SRV" alone is a nameless cookie whose value is "SRV", not our cookie.
  EXPECT_EQ(find_cookie("SRV", "SRV"), std::nullopt);
  EXPECT_EQ(find_cookie("SRV; a=1", "SRV"), std::nullopt);
  EXPECT_EQ(find_cookie("SRV; SRV=3", "SRV"), std::optional("3"sv));
  EXPECT_EQ(find_cookie("flag; a=1; SRV=z; other", "SRV"), std::optional("z"sv));
}

TEST(RemoveCookie, FromEachPositionKeepingOthersInOrder) {
  std::string out = "stale contents";
  EXPECT_TRUE(remove_cookie("SRV=x; a=1; b=2", "SRV", out));
  EXPECT_EQ(out, "a=1; b=2");
  EXPECT_TRUE(remove_cookie("a=1; SRV=x; b=2", "SRV", out));
  EXPECT_EQ(out, "a=1; b=2");
  EXPECT_TRUE(remove_cookie("a=1; b=2; SRV=x", "SRV", out));
  EXPECT_EQ(out, "a=1; b=2");
}

TEST(RemoveCookie, OtherPairsAreByteExact) {
  std::string out;
  EXPECT_TRUE(remove_cookie("z=\"q v\"; SRV=x; a = 1; JSESSIONID=AbC.d-e_f~; e=", "SRV", out));
  EXPECT_EQ(out, "z=\"q v\"; a = 1; JSESSIONID=AbC.d-e_f~; e=");
  // Pairs without '=' are other cookies too.
  EXPECT_TRUE(remove_cookie("flag; SRV=x; other", "SRV", out));
  EXPECT_EQ(out, "flag; other");
}

TEST(RemoveCookie, RemovesEveryDuplicate) {
  std::string out;
  EXPECT_TRUE(remove_cookie("SRV=1; a=1; SRV=2; b=2; SRV=\"3\"", "SRV", out));
  EXPECT_EQ(out, "a=1; b=2");
}

TEST(RemoveCookie, KeepsCookiesWhoseNameOnlyStartsWithOurs) {
  std::string out;
  EXPECT_TRUE(remove_cookie("SRVX=1; SRV=2; XSRV=3", "SRV", out));
  EXPECT_EQ(out, "SRVX=1; XSRV=3");
}

TEST(RemoveCookie, FalseWhenAbsent) {
  std::string out = "stale";
  EXPECT_FALSE(remove_cookie("a=1; b=2", "SRV", out));
  EXPECT_EQ(out, "a=1; b=2");
  EXPECT_FALSE(remove_cookie("", "SRV", out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(remove_cookie("SRV; srv=1", "SRV", out));
  EXPECT_EQ(out, "SRV; srv=1");
}

TEST(RemoveCookie, EmptyWhenOnlyOurs) {
  std::string out = "stale";
  EXPECT_TRUE(remove_cookie("SRV=x", "SRV", out));
  EXPECT_EQ(out, "");
  out = "stale";
  EXPECT_TRUE(remove_cookie(" SRV=x ; SRV=y;", "SRV", out));
  EXPECT_EQ(out, "");
}

TEST(IsCookieToken, Accepts) {
  for (const char* ok : {"SRV", "JSESSIONID", "__Host-sid", "a", "0", "a.b_c-d",
                         "!#$%&'*+-.^_`|~", "X1y2Z3"})
    EXPECT_TRUE(is_cookie_token(ok)) << ok;
}

TEST(IsCookieToken, Rejects) {
  for (std::string_view bad :
       {""sv, "a b"sv, "a=b"sv, "a;b"sv, "a,b"sv, "a\"b"sv, "a\tb"sv, "(a)"sv, "<a>"sv, "a@b"sv,
        "a:b"sv, "a\\b"sv, "a/b"sv, "[a]"sv, "a?"sv, "{a}"sv, "a\x7f"sv, "a\x01"sv,
        "caf\xc3\xa9"sv, " SRV"sv, "SRV "sv, "a\0b"sv})
    EXPECT_FALSE(is_cookie_token(bad)) << bad;
}

}  // namespace
}  // namespace sag::affinity
