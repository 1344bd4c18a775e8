// The full decision order of docs/behaviour.md#persistence with a real store: cookie, then learned
// session cookie, then source address, then the balancer; redispatch
// written back; TTLs from the injected time.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "affinity/affinity_resolver.h"
#include "affinity/model/backend.h"
#include "affinity/store/memory_affinity_store.h"
#include "affinity/model/server.h"

namespace sag::affinity {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

constexpr int64_t kNow = 1'800'000'000;

class ResolverOrderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config::BackendConfig b;
    b.name = "app";
    uint16_t port = 9001;
    for (const char* n : {"s1", "s2", "s3"}) {
      config::ServerConfig s;
      s.name = n;
      s.endpoint = *config::Endpoint::parse("127.0.0.1:" + std::to_string(port++));
      b.servers.push_back(s);
    }
    b.persistence.cookie = config::CookieConfig{};
    b.persistence.learn = config::LearnConfig{"JSESSIONID", minutes(30)};
    b.persistence.source = config::SourceConfig{24, 64, minutes(30)};
    config_ = b;
    rebuild();
  }

  void rebuild() {
    backend_ = std::make_unique<Backend>(config_);
    balancer_ = backend_->make_balancer();
    store_ = std::make_unique<MemoryAffinityStore>(1000, 4);
    resolver_ = std::make_unique<AffinityResolver>(*backend_, *balancer_, store_.get());
  }

  Server* server(const char* name) { return backend_->find_server(name); }
  std::string cookie_for(const char* name) {
    return backend_->cookie()->value_for(*server(name), kNow);
  }

  AffinityDecision resolve(std::optional<std::string> cookie, std::optional<std::string> learn,
                           std::optional<std::string> source_ip,
                           std::span<const uint32_t> excluded = {}) {
    cookie_ = std::move(cookie);
    learn_ = std::move(learn);
    AffinityRequest r;
    if (cookie_) r.cookie = *cookie_;
    if (learn_) r.learn = *learn_;
    if (source_ip) {
      ip_ = *config::IpAddress::parse(*source_ip);
      r.source = &ip_;
    }
    r.now = kNow;
    r.steady_now = steady_;
    r.excluded = excluded;
    return resolver_->resolve(r);
  }

  config::BackendConfig config_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Balancer> balancer_;
  std::unique_ptr<MemoryAffinityStore> store_;
  std::unique_ptr<AffinityResolver> resolver_;
  std::chrono::steady_clock::time_point steady_{std::chrono::hours(1000)};
  std::optional<std::string> cookie_, learn_;
  config::IpAddress ip_;
};

TEST_F(ResolverOrderTest, CookieBeatsLearnBeatsSourceBeatsBalancer) {
  // The source pin for 10.0.0.0/24 goes wherever the balancer sends it; the
  // learned session and the cookie then name the two other servers.
  auto first = resolve(std::nullopt, std::nullopt, "10.0.0.7");
  ASSERT_NE(first.server, nullptr);
  EXPECT_EQ(first.outcome, PersistOutcome::kNew);
  Server* by_source = first.server;
  Server* others[2];
  int n = 0;
  for (Server* s : backend_->servers())
    if (s != by_source) others[n++] = s;
  Server* by_learn = others[0];
  Server* by_cookie = others[1];
  resolver_->learn("sess-1", *by_learn, steady_);
  const std::string cookie = backend_->cookie()->value_for(*by_cookie, kNow);

  auto d = resolve(cookie, "sess-1", "10.0.0.7");
  EXPECT_EQ(d.server, by_cookie);
  EXPECT_EQ(d.outcome, PersistOutcome::kCookieHit);
  EXPECT_FALSE(d.set_cookie);

  d = resolve(std::nullopt, "sess-1", "10.0.0.7");
  EXPECT_EQ(d.server, by_learn);
  EXPECT_EQ(d.outcome, PersistOutcome::kLearnHit);
  EXPECT_TRUE(d.set_cookie) << "a learn hit without the gateway's cookie gets one";

  d = resolve(std::nullopt, "unknown-session", "10.0.0.99");  // same /24
  EXPECT_EQ(d.server, by_source);
  EXPECT_EQ(d.outcome, PersistOutcome::kSourceHit);

  d = resolve(std::nullopt, std::nullopt, std::nullopt);
  EXPECT_EQ(d.outcome, PersistOutcome::kNew);
  EXPECT_NE(d.server, nullptr);
}

TEST_F(ResolverOrderTest, SourceMaskGroupsAddresses) {
  auto first = resolve(std::nullopt, std::nullopt, "192.168.5.1");
  ASSERT_NE(first.server, nullptr);
  EXPECT_EQ(first.outcome, PersistOutcome::kNew);
  for (const char* ip : {"192.168.5.2", "192.168.5.254"}) {
    auto d = resolve(std::nullopt, std::nullopt, ip);
    EXPECT_EQ(d.server, first.server) << ip;
    EXPECT_EQ(d.outcome, PersistOutcome::kSourceHit) << ip;
  }
  // Another /24 is a new entry (not necessarily another server).
  EXPECT_EQ(resolve(std::nullopt, std::nullopt, "192.168.6.1").outcome, PersistOutcome::kNew);
  // IPv6 under /64.
  auto v6 = resolve(std::nullopt, std::nullopt, "2001:db8::1");
  auto v6b = resolve(std::nullopt, std::nullopt, "2001:db8::ffff:1");
  EXPECT_EQ(v6b.server, v6.server);
  EXPECT_EQ(v6b.outcome, PersistOutcome::kSourceHit);
}

TEST_F(ResolverOrderTest, LearnEntryExpiresAfterItsTtlAndIsRefreshedOnUse) {
  resolver_->learn("sess-ttl", *server("s2"), steady_);
  steady_ += minutes(20);
  EXPECT_EQ(resolve(std::nullopt, "sess-ttl", std::nullopt).outcome, PersistOutcome::kLearnHit);
  steady_ += minutes(20);  // 40 min after learning, 20 after last use
  EXPECT_EQ(resolve(std::nullopt, "sess-ttl", std::nullopt).outcome, PersistOutcome::kLearnHit);
  steady_ += minutes(31);
  EXPECT_EQ(resolve(std::nullopt, "sess-ttl", std::nullopt).outcome, PersistOutcome::kNew);
}

// What the resolver asks of the store: hits refresh() (an extension that
// never changes the pin), new pins and redispatches put().
class CountingStore final : public AffinityStore {
 public:
  std::optional<ServerId> find(std::string_view key, TimePoint now) override { return inner_.find(key, now); }
  void put(std::string_view key, ServerId server, Duration ttl, TimePoint now) override {
    ++puts;
    inner_.put(key, server, ttl, now);
  }
  ServerId claim(std::string_view key, ServerId server, Duration ttl, TimePoint now) override {
    ++puts;
    return inner_.claim(key, server, ttl, now);
  }
  void refresh(std::string_view key, ServerId server, Duration ttl, TimePoint now) override {
    ++refreshes;
    inner_.refresh(key, server, ttl, now);
  }
  void erase(std::string_view key) override { inner_.erase(key); }

  int puts = 0;
  int refreshes = 0;

 private:
  MemoryAffinityStore inner_{1000, 1};
};

// The race of parallel first connections: another worker files the
// address's entry between this resolve's find (a miss) and its write. The
// write is a claim, so this one joins the other's server instead of
// replacing its entry (SPEC §8).
class LateFindStore final : public AffinityStore {
 public:
  std::optional<ServerId> find(std::string_view, TimePoint) override { return std::nullopt; }
  void put(std::string_view key, ServerId server, Duration ttl, TimePoint now) override {
    inner.put(key, server, ttl, now);
  }
  ServerId claim(std::string_view key, ServerId server, Duration ttl, TimePoint now) override {
    return inner.claim(key, server, ttl, now);
  }
  void refresh(std::string_view key, ServerId server, Duration ttl, TimePoint now) override {
    inner.refresh(key, server, ttl, now);
  }
  void erase(std::string_view key) override { inner.erase(key); }

  MemoryAffinityStore inner{1000, 1};
};

TEST_F(ResolverOrderTest, AFirstConnectionThatLostTheRaceJoinsTheWinnersServer) {
  LateFindStore late;
  resolver_ = std::make_unique<AffinityResolver>(*backend_, *balancer_, &late);
  const auto first = resolve(std::nullopt, std::nullopt, "192.0.2.7");
  ASSERT_NE(first.server, nullptr);
  EXPECT_EQ(first.outcome, PersistOutcome::kNew);
  // Round robin picks other servers too; the claim finds the first's each
  // time (an outcome `new` is a pick that happened to be the same server).
  int joined = 0;
  for (int i = 0; i < 4; ++i) {
    const auto racing = resolve(std::nullopt, std::nullopt, "192.0.2.7");
    EXPECT_EQ(racing.server, first.server);
    if (racing.outcome == PersistOutcome::kSourceHit) ++joined;
    else EXPECT_EQ(racing.outcome, PersistOutcome::kNew);
  }
  EXPECT_GE(joined, 2);
  // The winner's server can't take it (excluded after a connect failure):
  // this connection's choice replaces the entry (a redispatch's write).
  const uint32_t failed[] = {first.server->index()};
  const auto moved = resolve(std::nullopt, std::nullopt, "192.0.2.7", failed);
  ASSERT_NE(moved.server, nullptr);
  EXPECT_NE(moved.server, first.server);
  EXPECT_EQ(resolve(std::nullopt, std::nullopt, "192.0.2.7").server, moved.server);
}

TEST_F(ResolverOrderTest, HitsRefreshTheEntryAndChangesPutIt) {
  CountingStore counting;
  resolver_ = std::make_unique<AffinityResolver>(*backend_, *balancer_, &counting);
  resolver_->learn("sess-count", *server("s2"), steady_);
  EXPECT_EQ(counting.puts, 1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(resolve(std::nullopt, "sess-count", std::nullopt).outcome, PersistOutcome::kLearnHit);
  EXPECT_EQ(counting.puts, 1);
  EXPECT_EQ(counting.refreshes, 3);

  auto first = resolve(std::nullopt, std::nullopt, "10.1.0.1");  // a new source pin
  EXPECT_EQ(first.outcome, PersistOutcome::kNew);
  EXPECT_EQ(counting.puts, 2);
  EXPECT_EQ(resolve(std::nullopt, std::nullopt, "10.1.0.2").outcome, PersistOutcome::kSourceHit);
  EXPECT_EQ(counting.puts, 2);
  EXPECT_EQ(counting.refreshes, 4);

  server("s2")->set_healthy(false);  // the learned session moves: written back
  auto moved = resolve(std::nullopt, "sess-count", std::nullopt);
  EXPECT_EQ(moved.outcome, PersistOutcome::kRedispatch);
  EXPECT_EQ(counting.puts, 3);
  EXPECT_EQ(counting.refreshes, 4);
}

TEST_F(ResolverOrderTest, ForgetRemovesTheLearnedEntry) {
  resolver_->learn("sess-gone", *server("s3"), steady_);
  resolver_->forget("sess-gone");
  EXPECT_EQ(resolve(std::nullopt, "sess-gone", std::nullopt).outcome, PersistOutcome::kNew);
}

TEST_F(ResolverOrderTest, RedispatchOfALearnedSessionIsWrittenBackAndSticks) {
  resolver_->learn("sess-move", *server("s1"), steady_);
  server("s1")->set_healthy(false);
  auto d = resolve(std::nullopt, "sess-move", std::nullopt);
  ASSERT_NE(d.server, nullptr);
  EXPECT_NE(d.server, server("s1"));
  EXPECT_EQ(d.outcome, PersistOutcome::kRedispatch);
  Server* moved_to = d.server;
  // s1 comes back: the session stays where it was moved (docs/behaviour.md#persistence).
  server("s1")->set_healthy(true);
  d = resolve(std::nullopt, "sess-move", std::nullopt);
  EXPECT_EQ(d.server, moved_to);
  EXPECT_EQ(d.outcome, PersistOutcome::kLearnHit);
}

TEST_F(ResolverOrderTest, RedispatchOfASourcePinIsWrittenBack) {
  auto first = resolve(std::nullopt, std::nullopt, "172.16.0.1");
  ASSERT_NE(first.server, nullptr);
  Server* old = first.server;
  old->set_admin_state(AdminState::kMaint);
  auto d = resolve(std::nullopt, std::nullopt, "172.16.0.1");
  ASSERT_NE(d.server, nullptr);
  EXPECT_NE(d.server, old);
  EXPECT_EQ(d.outcome, PersistOutcome::kRedispatch);
  old->set_admin_state(AdminState::kReady);
  auto again = resolve(std::nullopt, std::nullopt, "172.16.0.1");
  EXPECT_EQ(again.server, d.server);
  EXPECT_EQ(again.outcome, PersistOutcome::kSourceHit);
}

TEST_F(ResolverOrderTest, DrainKeepsLearnedSessions) {
  resolver_->learn("sess-drain", *server("s2"), steady_);
  server("s2")->set_admin_state(AdminState::kDrain);
  auto d = resolve(std::nullopt, "sess-drain", std::nullopt);
  EXPECT_EQ(d.server, server("s2"));
  EXPECT_EQ(d.outcome, PersistOutcome::kLearnHit);
}

TEST_F(ResolverOrderTest, WithoutRedispatchAnUnusableLearnedServerIsRefused) {
  config_.redispatch = false;
  rebuild();
  resolver_->learn("sess-strict", *server("s1"), steady_);
  server("s1")->set_healthy(false);
  EXPECT_EQ(resolve(std::nullopt, "sess-strict", std::nullopt).server, nullptr);
}

TEST_F(ResolverOrderTest, AnExcludedLearnedServerIsMovedForThisRequest) {
  resolver_->learn("sess-retry", *server("s1"), steady_);
  const uint32_t excluded[] = {server("s1")->index()};
  auto d = resolve(std::nullopt, "sess-retry", std::nullopt, excluded);
  ASSERT_NE(d.server, nullptr);
  EXPECT_NE(d.server, server("s1"));
  EXPECT_EQ(d.outcome, PersistOutcome::kRedispatch);
}

TEST_F(ResolverOrderTest, CookiePinnedToUnusableServerFallsToLearn) {
  resolver_->learn("sess-both", *server("s3"), steady_);
  server("s1")->set_healthy(false);
  auto d = resolve(cookie_for("s1"), "sess-both", std::nullopt);
  EXPECT_EQ(d.server, server("s3"));
  EXPECT_EQ(d.outcome, PersistOutcome::kRedispatch) << "the cookie's pin moved";
  EXPECT_TRUE(d.set_cookie);
}

}  // namespace
}  // namespace sag::affinity
