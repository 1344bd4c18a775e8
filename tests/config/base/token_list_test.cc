#include "config/base/token_list.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sag::base {
namespace {

std::vector<std::string> tokens(std::string_view list) {
  std::vector<std::string> out;
  for (std::string_view t; next_token(list, t);) out.emplace_back(t);
  return out;
}

TEST(TokenListTest, SplitsTrimsAndSkipsEmptyElements) {
  using V = std::vector<std::string>;
  EXPECT_EQ(tokens(""), V{});
  EXPECT_EQ(tokens(" , ,\t,"), V{});
  EXPECT_EQ(tokens("a"), V{"a"});
  EXPECT_EQ(tokens("gzip, chunked"), (V{"gzip", "chunked"}));
  EXPECT_EQ(tokens(" a ,\tb c\t,,d,"), (V{"a", "b c", "d"}));
}

TEST(TokenListTest, HasTokenComparesNamesCaseInsensitively) {
  EXPECT_TRUE(has_token("no-store", "no-store"));
  EXPECT_TRUE(has_token("Private, No-Store", "no-store"));
  EXPECT_TRUE(has_token("public, max-age=60", "max-age"));
  EXPECT_TRUE(has_token("no-cache=\"set-cookie\"", "no-cache"));
  EXPECT_TRUE(has_token("max-age =60", "max-age"));
  EXPECT_FALSE(has_token("s-maxage=60", "max-age"));
  EXPECT_FALSE(has_token("no-store-x", "no-store"));
  EXPECT_FALSE(has_token("", "no-store"));
  EXPECT_FALSE(has_token("x=no-store", "no-store"));
}

TEST(TokenListTest, TrimAndEquals) {
  EXPECT_EQ(trim_blanks(" \t a b \t"), "a b");
  EXPECT_EQ(trim_blanks("\r a \n"), "\r a \n");  // only spaces and tabs
  EXPECT_TRUE(iequals_ascii("Content-Length", "content-length"));
  EXPECT_FALSE(iequals_ascii("content-length", "content-lengt"));
  EXPECT_FALSE(iequals_ascii("\xc9", "\xe9"));  // ASCII only
}

}  // namespace
}  // namespace sag::base
