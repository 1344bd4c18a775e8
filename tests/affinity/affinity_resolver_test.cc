// The persistence decision (affinity/affinity_resolver.h, docs/behaviour.md#persistence).
#include "affinity/affinity_resolver.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "affinity/model/backend.h"
#include "affinity/balance/round_robin_balancer.h"
#include "affinity/model/server.h"

namespace sag::affinity {
namespace {

// The documented default cookie is dated (max_idle 30m, max_life 8h); tests of
// the bare-id format start from an undated one and add dates explicitly.
config::CookieConfig undated() {
  config::CookieConfig c;
  c.max_idle = config::Duration(0);
  c.max_life = config::Duration(0);
  return c;
}

config::BackendConfig backend_config(std::vector<std::string> names) {
  config::BackendConfig b;
  b.name = "app";
  uint16_t port = 9001;
  for (auto& n : names) {
    config::ServerConfig s;
    s.name = n;
    s.address = "127.0.0.1:" + std::to_string(port++);
    auto ep = config::Endpoint::parse(s.address);
    EXPECT_TRUE(ep);
    s.endpoint = ep.value_or(config::Endpoint{});
    b.servers.push_back(s);
  }
  b.persistence.cookie = undated();
  return b;
}

class ResolverTest : public ::testing::Test {
 protected:
  void build(config::BackendConfig bc) {
    backend_ = std::make_unique<Backend>(bc);
    balancer_ = backend_->make_balancer();
    resolver_ = std::make_unique<AffinityResolver>(*backend_, *balancer_, nullptr);
  }
  void SetUp() override { build(backend_config({"s1", "s2", "s3"})); }

  Server* server(const char* name) { return backend_->find_server(name); }
  std::string id(const char* name) { return server(name)->cookie_id(); }

  AffinityDecision resolve(std::optional<std::string> cookie,
                           std::span<const uint32_t> excluded = {}, Server* pin = nullptr) {
    cookie_storage_ = std::move(cookie);
    AffinityRequest req;
    if (cookie_storage_) req.cookie = *cookie_storage_;
    req.now = 1'800'000'000;
    req.excluded = excluded;
    req.connection_pin = pin;
    return resolver_->resolve(req);
  }

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Balancer> balancer_;
  std::unique_ptr<AffinityResolver> resolver_;
  std::optional<std::string> cookie_storage_;
};

TEST(PersistOutcome, Names) {
  EXPECT_STREQ(to_string(PersistOutcome::kNew), "new");
  EXPECT_STREQ(to_string(PersistOutcome::kCookieHit), "cookie-hit");
  EXPECT_STREQ(to_string(PersistOutcome::kLearnHit), "learn-hit");
  EXPECT_STREQ(to_string(PersistOutcome::kSourceHit), "source-hit");
  EXPECT_STREQ(to_string(PersistOutcome::kRedispatch), "redispatch");
  EXPECT_STREQ(to_string(PersistOutcome::kInvalid), "invalid");
  EXPECT_STREQ(to_string(PersistOutcome::kExpired), "expired");
}

TEST_F(ResolverTest, NoCookieIsNewAndBalanced) {
  std::vector<std::string> got;
  for (int i = 0; i < 6; ++i) {
    auto d = resolve(std::nullopt);
    ASSERT_NE(d.server, nullptr);
    EXPECT_EQ(d.outcome, PersistOutcome::kNew);
    EXPECT_TRUE(d.set_cookie);
    got.push_back(d.server->name());
  }
  EXPECT_EQ(got, (std::vector<std::string>{"s1", "s2", "s3", "s1", "s2", "s3"}));
}

TEST_F(ResolverTest, ValidCookieHitsItsServer) {
  for (const char* name : {"s2", "s2", "s3", "s1", "s2"}) {
    auto d = resolve(id(name));
    EXPECT_EQ(d.server, server(name));
    EXPECT_EQ(d.outcome, PersistOutcome::kCookieHit);
    EXPECT_FALSE(d.set_cookie);
  }
}

TEST_F(ResolverTest, CookieHitDoesNotAdvanceTheBalancer) {
  for (int i = 0; i < 5; ++i) resolve(id("s3"));
  EXPECT_EQ(resolve(std::nullopt).server, server("s1"));
  EXPECT_EQ(resolve(std::nullopt).server, server("s2"));
}

TEST_F(ResolverTest, InvalidCookieIsBalancedWithFreshCookie) {
  for (const std::string& bad : {std::string("garbage"), std::string(), id("s1") + "x",
                                 StickyCookie::derive_id("other", "s1", "")}) {
    auto d = resolve(bad);
    ASSERT_NE(d.server, nullptr) << bad;
    EXPECT_EQ(d.outcome, PersistOutcome::kInvalid) << bad;
    EXPECT_TRUE(d.set_cookie) << bad;
  }
  // Balanced like a new request: the four went round robin.
  EXPECT_EQ(resolve(std::nullopt).server, server("s2"));
}

TEST_F(ResolverTest, PinnedServerDownRedispatches) {
  server("s2")->set_healthy(false);
  for (int i = 0; i < 6; ++i) {
    auto d = resolve(id("s2"));
    ASSERT_NE(d.server, nullptr);
    EXPECT_NE(d.server, server("s2"));
    EXPECT_EQ(d.outcome, PersistOutcome::kRedispatch);
    EXPECT_TRUE(d.set_cookie);
  }
}

TEST_F(ResolverTest, PinnedServerInMaintRedispatches) {
  server("s1")->set_admin_state(AdminState::kMaint);
  auto d = resolve(id("s1"));
  ASSERT_NE(d.server, nullptr);
  EXPECT_NE(d.server, server("s1"));
  EXPECT_EQ(d.outcome, PersistOutcome::kRedispatch);
  EXPECT_TRUE(d.set_cookie);
  // The client then holds the new server's cookie and stays there, even after
  // the old one comes back.
  Server* moved = d.server;
  server("s1")->set_admin_state(AdminState::kReady);
  auto again = resolve(moved->cookie_id());
  EXPECT_EQ(again.server, moved);
  EXPECT_EQ(again.outcome, PersistOutcome::kCookieHit);
  EXPECT_FALSE(again.set_cookie);
}

TEST_F(ResolverTest, RedispatchWithNothingLeftIsNull) {
  for (const char* n : {"s1", "s2", "s3"}) server(n)->set_healthy(false);
  auto d = resolve(id("s1"));
  EXPECT_EQ(d.server, nullptr);
  EXPECT_FALSE(d.set_cookie);
  auto fresh = resolve(std::nullopt);
  EXPECT_EQ(fresh.server, nullptr);
  EXPECT_FALSE(fresh.set_cookie);
}

TEST_F(ResolverTest, DrainKeepsPinnedSessionsButTakesNoNewOnes) {
  server("s2")->set_admin_state(AdminState::kDrain);
  auto d = resolve(id("s2"));
  EXPECT_EQ(d.server, server("s2"));
  EXPECT_EQ(d.outcome, PersistOutcome::kCookieHit);
  EXPECT_FALSE(d.set_cookie);
  std::map<std::string, int> fresh;
  for (int i = 0; i < 100; ++i) {
    auto n = resolve(std::nullopt);
    ASSERT_NE(n.server, nullptr);
    ++fresh[n.server->name()];
  }
  EXPECT_EQ(fresh, (std::map<std::string, int>{{"s1", 50}, {"s3", 50}}));
  // Invalid cookies are new sessions too.
  for (int i = 0; i < 10; ++i) EXPECT_NE(resolve(std::string("junk")).server, server("s2"));
}

TEST_F(ResolverTest, DrainedAndDownPinnedRedispatches) {
  server("s2")->set_admin_state(AdminState::kDrain);
  server("s2")->set_healthy(false);
  auto d = resolve(id("s2"));
  ASSERT_NE(d.server, nullptr);
  EXPECT_NE(d.server, server("s2"));
  EXPECT_EQ(d.outcome, PersistOutcome::kRedispatch);
}

TEST_F(ResolverTest, PinnedWeightZeroStillServesItsSessions) {
  // Weight 0 takes no new sessions, but pinned ones are not moved.
  server("s1")->set_weight(0);
  auto d = resolve(id("s1"));
  EXPECT_EQ(d.server, server("s1"));
  EXPECT_EQ(d.outcome, PersistOutcome::kCookieHit);
}

TEST_F(ResolverTest, RedispatchFalseRefuses) {
  auto bc = backend_config({"s1", "s2", "s3"});
  bc.redispatch = false;
  build(bc);
  server("s1")->set_healthy(false);
  auto d = resolve(id("s1"));
  EXPECT_EQ(d.server, nullptr);
  EXPECT_FALSE(d.set_cookie);
  server("s1")->set_healthy(true);
  server("s1")->set_admin_state(AdminState::kMaint);
  d = resolve(id("s1"));
  EXPECT_EQ(d.server, nullptr);
  EXPECT_FALSE(d.set_cookie);
  // Others are unaffected.
  d = resolve(id("s2"));
  EXPECT_EQ(d.server, server("s2"));
  d = resolve(std::nullopt);
  ASSERT_NE(d.server, nullptr);
  EXPECT_NE(d.server, server("s1"));
  EXPECT_EQ(d.outcome, PersistOutcome::kNew);
}

TEST_F(ResolverTest, PinnedServerExcludedAfterFailureMovesElsewhere) {
  const uint32_t failed[] = {server("s2")->index()};
  for (int i = 0; i < 6; ++i) {
    auto d = resolve(id("s2"), failed);
    ASSERT_NE(d.server, nullptr);
    EXPECT_NE(d.server, server("s2"));
    EXPECT_EQ(d.outcome, PersistOutcome::kRedispatch);
    EXPECT_TRUE(d.set_cookie);
  }
}

TEST_F(ResolverTest, ExcludedNeverChosenForNewRequests) {
  const uint32_t failed[] = {server("s1")->index(), server("s3")->index()};
  for (int i = 0; i < 5; ++i) {
    auto d = resolve(std::nullopt, failed);
    EXPECT_EQ(d.server, server("s2"));
    EXPECT_EQ(d.outcome, PersistOutcome::kNew);
  }
  const uint32_t all[] = {0, 1, 2};
  auto d = resolve(std::nullopt, all);
  EXPECT_EQ(d.server, nullptr);
  EXPECT_FALSE(d.set_cookie);
}

TEST_F(ResolverTest, WithoutCookiePersistenceNeverSetsCookie) {
  auto bc = backend_config({"s1", "s2"});
  bc.persistence.cookie = std::nullopt;
  build(bc);
  ASSERT_EQ(backend_->cookie(), nullptr);
  std::vector<std::string> got;
  for (int i = 0; i < 4; ++i) {
    auto d = resolve(std::nullopt);
    ASSERT_NE(d.server, nullptr);
    EXPECT_EQ(d.outcome, PersistOutcome::kNew);
    EXPECT_FALSE(d.set_cookie);
    got.push_back(d.server->name());
  }
  EXPECT_EQ(got, (std::vector<std::string>{"s1", "s2", "s1", "s2"}));
  // A value that would be a valid id means nothing without cookie persistence.
  auto d = resolve(StickyCookie::derive_id("app", "s2", ""));
  EXPECT_EQ(d.outcome, PersistOutcome::kNew);
  EXPECT_FALSE(d.set_cookie);
  EXPECT_EQ(d.server, server("s1"));
}

// docs/behaviour.md#persistence: requests on one connection that carry no persistence yet follow
// the server chosen for the first of them.
TEST_F(ResolverTest, ConnectionPinFollowedByRequestsWithoutPersistence) {
  for (int i = 0; i < 3; ++i) {
    auto d = resolve(std::nullopt, {}, server("s3"));
    EXPECT_EQ(d.server, server("s3"));
    EXPECT_EQ(d.outcome, PersistOutcome::kNew);
    EXPECT_TRUE(d.set_cookie) << "each response carries the same cookie";
  }
  // The balancer was not consulted.
  EXPECT_EQ(resolve(std::nullopt).server, server("s1"));
}

TEST_F(ResolverTest, ValidCookieWinsOverConnectionPin) {
  auto d = resolve(id("s2"), {}, server("s3"));
  EXPECT_EQ(d.server, server("s2"));
  EXPECT_EQ(d.outcome, PersistOutcome::kCookieHit);
  EXPECT_FALSE(d.set_cookie);
}

TEST_F(ResolverTest, InvalidCookieFollowsConnectionPin) {
  auto d = resolve(std::string("junk"), {}, server("s2"));
  EXPECT_EQ(d.server, server("s2"));
  EXPECT_EQ(d.outcome, PersistOutcome::kInvalid);
  EXPECT_TRUE(d.set_cookie);
}

TEST_F(ResolverTest, UnusableOrExcludedConnectionPinIsBalanced) {
  server("s1")->set_healthy(false);
  auto d = resolve(std::nullopt, {}, server("s1"));
  ASSERT_NE(d.server, nullptr);
  EXPECT_NE(d.server, server("s1"));
  EXPECT_EQ(d.outcome, PersistOutcome::kNew);
  server("s1")->set_healthy(true);
  server("s1")->set_admin_state(AdminState::kMaint);
  d = resolve(std::nullopt, {}, server("s1"));
  ASSERT_NE(d.server, nullptr);
  EXPECT_NE(d.server, server("s1"));
  server("s1")->set_admin_state(AdminState::kReady);
  const uint32_t failed[] = {server("s1")->index()};
  for (int i = 0; i < 4; ++i) {
    d = resolve(std::nullopt, failed, server("s1"));
    ASSERT_NE(d.server, nullptr);
    EXPECT_NE(d.server, server("s1"));
  }
}

TEST_F(ResolverTest, RedispatchFollowsConnectionPinWhenUsable) {
  server("s1")->set_healthy(false);
  auto d = resolve(id("s1"), {}, server("s3"));
  EXPECT_EQ(d.server, server("s3"));
  EXPECT_EQ(d.outcome, PersistOutcome::kRedispatch);
  EXPECT_TRUE(d.set_cookie);
}

TEST_F(ResolverTest, RotatedSecretCookieHitIsReissued) {
  auto bc = backend_config({"s1", "s2"});
  bc.persistence.cookie->secrets = {"new", "old"};
  build(bc);
  auto d = resolve(StickyCookie::derive_id("app", "s2", "old"));
  EXPECT_EQ(d.server, server("s2"));
  EXPECT_EQ(d.outcome, PersistOutcome::kCookieHit);
  EXPECT_TRUE(d.set_cookie);
  d = resolve(id("s2"));
  EXPECT_EQ(d.server, server("s2"));
  EXPECT_FALSE(d.set_cookie);
}

}  // namespace
}  // namespace sag::affinity
