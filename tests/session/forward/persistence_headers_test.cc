// Persistence headers both ways (session/forward/persistence_headers.h):
// what each cookie mode takes from the request and gives the server, what
// the server's Set-Cookie teaches, and the insert cookie's cache guard.
#include "session/forward/persistence_headers.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "affinity/affinity_resolver.h"
#include "affinity/balance/stable_hash.h"
#include "affinity/clock.h"
#include "affinity/cookie/sticky_cookie.h"
#include "affinity/model/backend.h"
#include "affinity/model/server.h"
#include "affinity/store/memory_affinity_store.h"
#include "config/endpoint.h"
#include "config/gateway_config.h"

namespace sag::session {
namespace {
namespace http = boost::beast::http;

class FixedClock final : public affinity::Clock {
 public:
  int64_t unix_seconds() const override { return 1'800'000'000; }
  std::chrono::steady_clock::time_point steady_now() const override { return {}; }
};

class PersistenceHeadersTest : public ::testing::Test {
 protected:
  void build(config::CookieMode mode, bool learn = false) {
    config::BackendConfig b;
    b.name = "app";
    for (int i = 0; i < 2; ++i) {
      config::ServerConfig s;
      s.name = "s" + std::to_string(i + 1);
      s.address = "127.0.0.1:" + std::to_string(9001 + i);
      s.endpoint = config::Endpoint::parse(s.address).value_or(config::Endpoint{});
      b.servers.push_back(s);
    }
    config::CookieConfig c;
    c.mode = mode;
    c.name = mode == config::CookieMode::kInsert ? "SRV" : "JSESSIONID";
    if (mode == config::CookieMode::kPrefix) c.app_cookie = "JSESSIONID";
    c.max_idle = config::Duration(0);
    c.max_life = config::Duration(0);
    b.persistence.cookie = c;
    if (learn) b.persistence.learn = config::LearnConfig{"PHPSESSID", config::Duration(60000)};
    backend_ = std::make_unique<affinity::Backend>(b);
    balancer_ = backend_->make_balancer();
    store_ = std::make_unique<affinity::MemoryAffinityStore>(1000);
    resolver_ = std::make_unique<affinity::AffinityResolver>(*backend_, *balancer_, store_.get());
  }
  const config::PersistenceConfig& persistence() const {
    return backend_->config().persistence;
  }
  affinity::Server& server(int i) { return *backend_->servers()[i]; }
  std::string id(int i) { return server(i).cookie_id(); }

  PersistenceHeaders::Request request(std::vector<std::string> cookies) {
    PersistenceHeaders::Request req;
    req.method(http::verb::get);
    req.target("/p?q=1");
    for (auto& c : cookies) req.insert(http::field::cookie, c);
    return req;
  }
  std::vector<std::string> set_cookies(const ResponseHeader& res) {
    std::vector<std::string> out;
    auto [a, b] = res.equal_range(http::field::set_cookie);
    for (auto it = a; it != b; ++it) out.emplace_back(it->value());
    return out;
  }

  FixedClock clock_;
  std::unique_ptr<affinity::Backend> backend_;
  std::unique_ptr<affinity::Balancer> balancer_;
  std::unique_ptr<affinity::MemoryAffinityStore> store_;
  std::unique_ptr<affinity::AffinityResolver> resolver_;
  PersistenceHeaders ph_;
};

TEST_F(PersistenceHeadersTest, InsertModeTakesOurCookieOutOfTheRequest) {
  build(config::CookieMode::kInsert);
  auto req = request({"a=1; SRV=" + id(1), "b=2"});
  auto in = ph_.read_request(req, backend_->cookie(), persistence());
  ASSERT_TRUE(in.cookie);
  EXPECT_EQ(*in.cookie, id(1));
  EXPECT_FALSE(in.learn);
  EXPECT_EQ(req[http::field::cookie], "a=1; b=2") << "fields joined, ours removed";
  EXPECT_EQ(std::distance(req.equal_range(http::field::cookie).first,
                          req.equal_range(http::field::cookie).second), 1);
}

TEST_F(PersistenceHeadersTest, InsertModeOnlyCookieLeavesNoCookieField) {
  build(config::CookieMode::kInsert);
  auto req = request({"SRV=" + id(0)});
  auto in = ph_.read_request(req, backend_->cookie(), persistence());
  ASSERT_TRUE(in.cookie);
  EXPECT_EQ(req.count(http::field::cookie), 0u);
}

TEST_F(PersistenceHeadersTest, InsertModeKeepsWhatFollowsOurCookieAndDropsEveryCopy) {
  build(config::CookieMode::kInsert);
  auto req = request({"SRV=" + id(0) + "; c=3"});
  auto in = ph_.read_request(req, backend_->cookie(), persistence());
  ASSERT_TRUE(in.cookie);
  EXPECT_EQ(*in.cookie, id(0));
  EXPECT_EQ(req[http::field::cookie], "c=3");
  auto twice = request({"SRV=" + id(0) + "; SRV=" + id(1)});
  in = ph_.read_request(twice, backend_->cookie(), persistence());
  ASSERT_TRUE(in.cookie);
  EXPECT_EQ(*in.cookie, id(0)) << "the first one counts";
  EXPECT_EQ(twice.count(http::field::cookie), 0u);
}

TEST_F(PersistenceHeadersTest, NoCookieLeavesTheRequestAlone) {
  build(config::CookieMode::kInsert);
  auto req = request({"a=1", "b=2"});
  auto in = ph_.read_request(req, backend_->cookie(), persistence());
  EXPECT_FALSE(in.cookie);
  EXPECT_EQ(req.count(http::field::cookie), 2u);
}

TEST_F(PersistenceHeadersTest, PrefixModeRestoresTheApplicationValue) {
  build(config::CookieMode::kPrefix);
  auto req = request({"JSESSIONID=" + id(0) + "~abc123; x=y"});
  auto in = ph_.read_request(req, backend_->cookie(), persistence());
  ASSERT_TRUE(in.cookie);
  EXPECT_EQ(*in.cookie, id(0));
  EXPECT_EQ(req[http::field::cookie], "JSESSIONID=abc123; x=y");
  // The application's own value (no "~") carries no persistence.
  auto plain = request({"JSESSIONID=abc123"});
  EXPECT_FALSE(ph_.read_request(plain, backend_->cookie(), persistence()).cookie);
  EXPECT_EQ(plain[http::field::cookie], "JSESSIONID=abc123");
}

TEST_F(PersistenceHeadersTest, RewriteModeLeavesTheServersCookie) {
  build(config::CookieMode::kRewrite);
  auto req = request({"JSESSIONID=" + id(1)});
  auto in = ph_.read_request(req, backend_->cookie(), persistence());
  ASSERT_TRUE(in.cookie);
  EXPECT_EQ(*in.cookie, id(1));
  EXPECT_EQ(req[http::field::cookie], "JSESSIONID=" + id(1));
}

TEST_F(PersistenceHeadersTest, LearnCookieIsRead) {
  build(config::CookieMode::kInsert, /*learn=*/true);
  auto req = request({"PHPSESSID=s3cr3t"});
  auto in = ph_.read_request(req, backend_->cookie(), persistence());
  ASSERT_TRUE(in.learn);
  EXPECT_EQ(*in.learn, "s3cr3t");
}

TEST_F(PersistenceHeadersTest, LearnAndForgetFromSetCookie) {
  build(config::CookieMode::kInsert, /*learn=*/true);
  ResponseHeader res;
  res.result(200);
  res.insert(http::field::set_cookie, "PHPSESSID=abc; Path=/");
  ph_.process_set_cookies(res, persistence(), *resolver_, clock_, server(1), backend_->cookie(),
                          std::nullopt);
  affinity::AffinityRequest r;
  const std::string learned = "abc";
  r.learn = learned;
  r.now = clock_.unix_seconds();
  auto d = resolver_->resolve(r);
  EXPECT_EQ(d.server, &server(1));
  EXPECT_EQ(d.outcome, affinity::PersistOutcome::kLearnHit);

  ResponseHeader clear;
  clear.result(200);
  clear.insert(http::field::set_cookie, "PHPSESSID=abc; Max-Age=0");
  ph_.process_set_cookies(clear, persistence(), *resolver_, clock_, server(1),
                          backend_->cookie(), std::nullopt);
  EXPECT_NE(resolver_->resolve(r).outcome, affinity::PersistOutcome::kLearnHit);
  EXPECT_EQ(set_cookies(clear), std::vector<std::string>{"PHPSESSID=abc; Max-Age=0"})
      << "learn mode never changes the server's cookie";
}

TEST_F(PersistenceHeadersTest, RewriteModeReplacesTheValue) {
  build(config::CookieMode::kRewrite);
  ResponseHeader res;
  res.result(200);
  res.insert(http::field::set_cookie, "other=1");
  res.insert(http::field::set_cookie, "JSESSIONID=app-value; Path=/; HttpOnly");
  ph_.process_set_cookies(res, persistence(), *resolver_, clock_, server(0), backend_->cookie(),
                          std::nullopt);
  auto got = set_cookies(res);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "other=1");
  EXPECT_EQ(got[1], "JSESSIONID=" + id(0) + "; Path=/; HttpOnly");
}

TEST_F(PersistenceHeadersTest, PrefixModePrefixesTheValue) {
  build(config::CookieMode::kPrefix);
  ResponseHeader res;
  res.result(200);
  res.insert(http::field::set_cookie, "JSESSIONID=xyz; Secure");
  ph_.process_set_cookies(res, persistence(), *resolver_, clock_, server(1), backend_->cookie(),
                          std::nullopt);
  EXPECT_EQ(set_cookies(res), std::vector<std::string>{"JSESSIONID=" + id(1) + "~xyz; Secure"});
}

TEST_F(PersistenceHeadersTest, InsertCookieGuardsSharedCaches) {
  build(config::CookieMode::kInsert);
  ResponseHeader res;
  res.result(200);
  res.set(http::field::cache_control, "public, max-age=60");
  ph_.insert_cookie(res, http::verb::get, *backend_->cookie(), server(0), clock_.unix_seconds(),
                    false, std::nullopt);
  auto got = set_cookies(res);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].starts_with("SRV=" + id(0))) << got[0];
  EXPECT_EQ(res[http::field::cache_control], "public, max-age=60, no-cache=\"set-cookie\"");

  ResponseHeader priv;
  priv.result(200);
  priv.set(http::field::cache_control, "private");
  ph_.insert_cookie(priv, http::verb::get, *backend_->cookie(), server(0), 0, false,
                    std::nullopt);
  EXPECT_EQ(priv[http::field::cache_control], "private");
}

TEST(SharedCacheable, FollowsRfc9111) {
  ResponseHeader res;
  res.result(200);
  EXPECT_FALSE(shared_cacheable(res, http::verb::get)) << "no freshness, no validator";
  res.set(http::field::last_modified, "Tue, 01 Dec 2026 00:00:00 GMT");
  EXPECT_TRUE(shared_cacheable(res, http::verb::get)) << "heuristic freshness";
  EXPECT_FALSE(shared_cacheable(res, http::verb::post));
  res.set(http::field::cache_control, "no-store");
  EXPECT_FALSE(shared_cacheable(res, http::verb::get));
  res.set(http::field::cache_control, "s-maxage=10");
  EXPECT_TRUE(shared_cacheable(res, http::verb::head));
  res.result(302);
  res.erase(http::field::cache_control);
  EXPECT_FALSE(shared_cacheable(res, http::verb::get)) << "302 isn't heuristically cacheable";
  res.set(http::field::expires, "Tue, 01 Dec 2026 00:00:00 GMT");
  EXPECT_TRUE(shared_cacheable(res, http::verb::get));
}

TEST_F(PersistenceHeadersTest, RequestHashBySource) {
  build(config::CookieMode::kInsert);
  auto req = request({"k=v1; SRV=x"});
  req.set("X-User", "alice");
  ph_.read_request(req, backend_->cookie(), persistence());
  config::IpAddress origin{};
  EXPECT_EQ(ph_.request_hash(config::HashSource::kNone, "", req, origin), 0u);
  EXPECT_EQ(ph_.request_hash(config::HashSource::kHeader, "X-User", req, origin),
            affinity::stable_hash64("alice"));
  EXPECT_EQ(ph_.request_hash(config::HashSource::kCookie, "k", req, origin),
            affinity::stable_hash64("v1"));
  EXPECT_EQ(ph_.request_hash(config::HashSource::kPath, "", req, origin),
            affinity::stable_hash64("/p"));
  EXPECT_EQ(ph_.request_hash(config::HashSource::kCookie, "absent", req, origin),
            affinity::stable_hash64(""));
}

}  // namespace
}  // namespace sag::session
