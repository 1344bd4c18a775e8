#include "config/base/base64.h"

#include <gtest/gtest.h>

namespace sag::base {
namespace {

TEST(Base64Test, StrictDecoding) {
  EXPECT_EQ(base64_decode(""), "");
  EXPECT_EQ(base64_decode("Zg=="), "f");
  EXPECT_EQ(base64_decode("Zg"), "f");
  EXPECT_EQ(base64_decode("Zm8="), "fo");
  EXPECT_EQ(base64_decode("Zm9v"), "foo");
  EXPECT_EQ(base64_decode("YWRtaW46c2VjcmV0"), "admin:secret");
  EXPECT_EQ(base64_decode("+/+/"), std::string("\xfb\xff\xbf"));
  EXPECT_FALSE(base64_decode("Zg="));    // wrong padding
  EXPECT_FALSE(base64_decode("Z==="));
  EXPECT_FALSE(base64_decode("Z"));      // impossible length
  EXPECT_FALSE(base64_decode("Zh=="));   // non-zero leftover bits
  EXPECT_FALSE(base64_decode("Zm9v!"));
  EXPECT_FALSE(base64_decode("Zm 9v"));
  EXPECT_FALSE(base64_decode("Zm9v\n"));
  EXPECT_FALSE(base64_decode("Zm-_"));   // base64url is not base64
  EXPECT_FALSE(base64_decode("=Zm9"));
}

}  // namespace
}  // namespace sag::base
