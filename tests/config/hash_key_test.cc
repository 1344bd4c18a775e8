// HashKey: the forms of a backend's hash_key, parsed once at load.
#include "config/hash_key.h"

#include <gtest/gtest.h>

namespace sag::config {
namespace {

TEST(HashKey, Forms) {
  EXPECT_EQ(HashKey::parse("path"), (HashKey{HashSource::kPath, ""}));
  EXPECT_EQ(HashKey::parse("source"), (HashKey{HashSource::kSource, ""}));
  EXPECT_EQ(HashKey::parse("header:X-User"), (HashKey{HashSource::kHeader, "X-User"}));
  EXPECT_EQ(HashKey::parse("cookie:JSESSIONID"), (HashKey{HashSource::kCookie, "JSESSIONID"}));
  EXPECT_EQ(HashKey::parse("cookie:a!#$%&'*+-.^_`|~z"), (HashKey{HashSource::kCookie, "a!#$%&'*+-.^_`|~z"}));
}

TEST(HashKey, Rejects) {
  for (const char* bad : {"", "Path", "paths", "source:", "header", "header:", "cookie:", "header:X User",
                          "cookie:a;b", "query:x", " path", "header:a,b"})
    EXPECT_FALSE(HashKey::parse(bad)) << bad;
}

}  // namespace
}  // namespace sag::config
