// Basic auth: the Authorization header parser and the credential check.
#include "gateway/admin/basic_auth.h"

#include <gtest/gtest.h>

namespace sag::gateway {
namespace {

TEST(BasicAuthTest, ParsesTheHeader) {
  EXPECT_EQ(admin::basic_credentials("Basic YWRtaW46c2VjcmV0"), "admin:secret");
  EXPECT_EQ(admin::basic_credentials("basic YWRtaW46c2VjcmV0"), "admin:secret");
  EXPECT_EQ(admin::basic_credentials("BASIC   YWRtaW46c2VjcmV0  "), "admin:secret");
  EXPECT_EQ(admin::basic_credentials("Basic YTpiOmM="), "a:b:c");  // ':' in the password
  EXPECT_EQ(admin::basic_credentials("Basic YWRtaW46"), "admin:");  // empty password
  EXPECT_FALSE(admin::basic_credentials(""));
  EXPECT_FALSE(admin::basic_credentials("Basic"));
  EXPECT_FALSE(admin::basic_credentials("Basic "));
  EXPECT_FALSE(admin::basic_credentials("BasicYWRtaW46c2VjcmV0"));
  EXPECT_FALSE(admin::basic_credentials("Bearer YWRtaW46c2VjcmV0"));
  EXPECT_FALSE(admin::basic_credentials("Basic YWRtaW4="));  // "admin": no ':'
  EXPECT_FALSE(admin::basic_credentials("Basic !!!!"));
  EXPECT_FALSE(admin::basic_credentials("Basic YWRtaW46c2VjcmV0 extra"));
}

TEST(BasicAuthTest, ChecksTheCredentials) {
  const admin::BasicAuth auth("admin", "secret");
  EXPECT_TRUE(auth.required());
  EXPECT_TRUE(auth.authorized("Basic YWRtaW46c2VjcmV0"));
  EXPECT_FALSE(auth.authorized(""));
  EXPECT_FALSE(auth.authorized("Basic YWRtaW46c2VjcmV1"));  // admin:secreu
  EXPECT_FALSE(auth.authorized("Basic YWRtaW46c2VjcmV0eA=="));  // admin:secretx
}

TEST(BasicAuthTest, NotRequiredWithoutUserOrPassword) {
  for (const auto& [user, password] : {std::pair{"", ""}, {"admin", ""}, {"", "secret"}}) {
    const admin::BasicAuth auth(user, password);
    EXPECT_FALSE(auth.required());
    EXPECT_TRUE(auth.authorized(""));
    EXPECT_TRUE(auth.authorized("Basic !!!!"));
  }
}

}  // namespace
}  // namespace sag::gateway
