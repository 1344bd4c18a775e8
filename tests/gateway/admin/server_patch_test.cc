// The PUT /api/backends/{b}/servers/{s} body parser.
#include "gateway/admin/server_patch.h"

#include <gtest/gtest.h>

#include <string>

namespace sag::gateway {
namespace {

using affinity::AdminState;

std::optional<admin::ServerPatch> parse(std::string_view body, std::string* error = nullptr) {
  std::string e;
  auto p = admin::parse_server_patch(body, e);
  if (error) *error = e;
  if (p) EXPECT_TRUE(e.empty()) << body;
  else EXPECT_FALSE(e.empty()) << body;
  return p;
}

TEST(ServerPatchTest, AcceptsEveryValidForm) {
  auto p = parse("{}");
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->state);
  EXPECT_FALSE(p->weight);

  ASSERT_TRUE(parse(" \t\r\n{ \n } \n"));

  p = parse(R"({"state": "drain"})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, AdminState::kDrain);
  EXPECT_FALSE(p->weight);

  p = parse(R"({"state":"ready"})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, AdminState::kReady);

  p = parse(R"({"weight": 0})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->weight, 0u);
  EXPECT_FALSE(p->state);

  p = parse(R"({"weight": 1000})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->weight, 1000u);

  p = parse(R"({"weight": -0})");  // valid JSON for zero
  ASSERT_TRUE(p);
  EXPECT_EQ(p->weight, 0u);

  p = parse(R"({ "state" : "maint" , "weight" : 5 })");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, AdminState::kMaint);
  EXPECT_EQ(p->weight, 5u);

  p = parse(R"({"weight": 42, "state": "ready"})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, AdminState::kReady);
  EXPECT_EQ(p->weight, 42u);

  // Escapes in keys and values are decoded before comparing.
  p = parse(R"({"st\u0061te": "dr\u0061in", "w\u0065ight": 7})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, AdminState::kDrain);
  EXPECT_EQ(p->weight, 7u);
}

TEST(ServerPatchTest, RejectsEveryBadBody) {
  const std::vector<std::string> bad = {
      // not a JSON object
      "", "   ", "null", "true", "[]", "[{}]", R"("state")", "42", "{", "}",
      // syntax
      R"({"state"})", R"({"state":})", R"({"state" "drain"})", R"({"state":"drain",})",
      R"({,})", R"({"state":"drain" "weight":1})", R"({"state":"drain"} x)",
      R"({"state":"drain"}{})", R"({'state':'drain'})", R"({state:"drain"})",
      R"({"state":"drain")", R"({"state":"drain)", "{\"state\":\"dr\x01ain\"}",
      R"({"state":"dr\xain"})", R"({"state":"\ud800"})", R"({"state":"\udc00"})",
      R"({"state":"\u12"})", R"({"weight":-})", R"({"weight":1.})", R"({"weight":.5})",
      R"({"weight":01})", R"({"weight":+1})", R"({"weight":0x10})",
      // unknown keys (names are case-sensitive)
      R"({"foo":1})", R"({"State":"drain"})", R"({"state":"drain","extra":true})",
      R"({"":1})",
      // wrong types
      R"({"state":1})", R"({"state":null})", R"({"state":true})", R"({"state":["drain"]})",
      R"({"state":{}})", R"({"weight":"10"})", R"({"weight":true})", R"({"weight":null})",
      R"({"weight":[1]})", R"({"weight":10.5})", R"({"weight":1e2})", R"({"weight":10.0})",
      // bad values
      R"({"state":"DRAIN"})", R"({"state":"up"})", R"({"state":""})", R"({"state":"drain "})",
      R"({"weight":-1})", R"({"weight":1001})", R"({"weight":4294967296})",
      R"({"weight":99999999999999999999999999})",
      // duplicates
      R"({"state":"drain","state":"ready"})", R"({"weight":1,"weight":2})",
  };
  for (const auto& body : bad) {
    std::string error;
    EXPECT_FALSE(parse(body, &error)) << "accepted: " << body;
  }
}

TEST(ServerPatchTest, ErrorsSayWhatIsWrong) {
  std::string e;
  parse(R"({"foo":1})", &e);
  EXPECT_NE(e.find("unknown key 'foo'"), std::string::npos) << e;
  parse(R"({"weight":1001})", &e);
  EXPECT_NE(e.find("0 to 1000"), std::string::npos) << e;
  parse(R"({"state":"up"})", &e);
  EXPECT_NE(e.find("ready, drain or maint"), std::string::npos) << e;
  parse("[]", &e);
  EXPECT_NE(e.find("JSON object"), std::string::npos) << e;
}

}  // namespace
}  // namespace sag::gateway
