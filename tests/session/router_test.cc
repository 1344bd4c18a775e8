// Routing (session/router.h): routes in order, first match wins, host
// patterns with ports, wildcards and FQDN dots, then the default backend.
#include "session/router.h"

#include <gtest/gtest.h>

#include "config/gateway_config.h"

namespace sag::session {
namespace {

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"web", "api", "admin", "wild"}) {
      config::BackendConfig b;
      b.name = name;
      cfg_.backends.push_back(b);
    }
  }
  Router make(std::vector<config::RouteConfig> routes, std::string fallback) {
    listener_.routes = std::move(routes);
    listener_.backend = std::move(fallback);
    return Router(listener_, cfg_);
  }

  config::GatewayConfig cfg_;
  config::ListenerConfig listener_;
};

TEST_F(RouterTest, DefaultBackendWithoutRoutes) {
  auto r = make({}, "api");
  EXPECT_EQ(r.select("anything", "/"), 1);
  EXPECT_EQ(r.select("", "/x"), 1);
}

TEST_F(RouterTest, NoDefaultAndNoMatchIsMinusOne) {
  auto r = make({{"app.example", "", "web"}}, "");
  EXPECT_EQ(r.select("other.example", "/"), -1);
  EXPECT_EQ(r.select("app.example", "/"), 0);
}

TEST_F(RouterTest, FirstMatchingRouteWinsInConfigOrder) {
  auto r = make({{"app.example", "/api/", "api"},
                 {"app.example", "/api/admin", "admin"},  // shadowed by the first
                 {"app.example", "", "web"}},
                "");
  EXPECT_EQ(r.select("app.example", "/api/admin/x"), 1);
  EXPECT_EQ(r.select("app.example", "/api/v1"), 1);
  EXPECT_EQ(r.select("app.example", "/apix"), 0);
  EXPECT_EQ(r.select("app.example", "/"), 0);
}

TEST_F(RouterTest, HostIsCaseInsensitiveAndIgnoresPortAndTrailingDot) {
  auto r = make({{"App.Example", "", "api"}}, "web");
  EXPECT_EQ(r.select("app.example", "/"), 1);
  EXPECT_EQ(r.select("APP.EXAMPLE:8443", "/"), 1);
  EXPECT_EQ(r.select("app.example.", "/"), 1);
  EXPECT_EQ(r.select("app.example.org", "/"), 0);
  EXPECT_EQ(r.select("xapp.example", "/"), 0);
}

TEST_F(RouterTest, WildcardMatchesNamesBelowOnly) {
  auto r = make({{"*.example.com", "", "wild"}}, "web");
  EXPECT_EQ(r.select("a.example.com", "/"), 3);
  EXPECT_EQ(r.select("a.b.example.com:80", "/"), 3);
  EXPECT_EQ(r.select("example.com", "/"), 0);
  EXPECT_EQ(r.select("badexample.com", "/"), 0);
}

TEST_F(RouterTest, Ipv6LiteralHostKeepsBrackets) {
  auto r = make({{"[::1]", "", "api"}}, "web");
  EXPECT_EQ(r.select("[::1]:8080", "/"), 1);
  EXPECT_EQ(r.select("[::1]", "/"), 1);
  EXPECT_EQ(r.select("[::2]", "/"), 0);
}

TEST_F(RouterTest, PathOnlyRoute) {
  auto r = make({{"", "/static/", "wild"}}, "web");
  EXPECT_EQ(r.select("any.host", "/static/a.css"), 3);
  EXPECT_EQ(r.select("any.host", "/static"), 0);
}

}  // namespace
}  // namespace sag::session
