// TCP mode in the config (SPEC §2, §8): `mode: tcp` listeners and backends,
// their defaults, and every key refused on the wrong kind, with FILE:LINE:COL.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "tests/config/load_errors.h"

namespace sag::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

using testing::errors_of;

LoadResult load(std::string_view yaml) { return ConfigLoader::load_string(yaml, "t.yaml", "/nonexistent"); }

// A tcp listener and a tcp backend; backend keys appended with a 4-space
// indent land in backend 'redis' from line 8.
constexpr const char* kTcp =
    "listeners:\n"
    "  - {name: r, bind: \"127.0.0.1:6380\", mode: tcp, backend: redis}\n"
    "backends:\n"
    "  - name: redis\n"
    "    mode: tcp\n"
    "    servers:\n"
    "      - {name: r1, address: \"127.0.0.1:6379\"}\n";

std::vector<std::string> tcp_errors(std::string_view extra) {
  return errors_of(load(std::string(kTcp) + std::string(extra)));
}

TEST(TcpConfigTest, ATcpPairLoadsWithTcpDefaults) {
  auto r = load(std::string(kTcp) +
                "    balance: source\n"
                "    persistence: {source: {ttl: 30m}}\n"
                "    timeouts: {connect: 1s, idle: 5m}\n");
  ASSERT_THAT(errors_of(r), IsEmpty());
  const auto& l = r.config->listeners[0];
  const auto& b = r.config->backends[0];
  EXPECT_EQ(l.mode, ProxyMode::kTcp);
  EXPECT_EQ(b.mode, ProxyMode::kTcp);
  EXPECT_EQ(b.balance, BalanceAlgorithm::kSource);
  EXPECT_FALSE(b.persistence.cookie);
  ASSERT_TRUE(b.persistence.source);
  EXPECT_EQ(b.idle_timeout, std::chrono::minutes(5));
  EXPECT_EQ(b.connect_timeout, std::chrono::seconds(1));
}

TEST(TcpConfigTest, WithoutPersistenceATcpBackendHasNone) {
  auto r = load(kTcp);
  ASSERT_THAT(errors_of(r), IsEmpty());
  const auto& b = r.config->backends[0];
  EXPECT_FALSE(b.persistence.cookie);
  EXPECT_FALSE(b.persistence.learn);
  EXPECT_FALSE(b.persistence.source);
  EXPECT_EQ(b.idle_timeout, std::chrono::minutes(30));
  EXPECT_EQ(b.health_check.type, HealthCheckType::kTcp);
}

TEST(TcpConfigTest, ModesMustMatch) {
  EXPECT_THAT(errors_of(load("listeners:\n"
                             "  - {name: r, bind: \"127.0.0.1:6380\", mode: tcp, backend: web}\n"
                             "  - {name: h, bind: \"127.0.0.1:8080\", backend: redis}\n"
                             "backends:\n"
                             "  - name: web\n"
                             "    servers: [{name: w1, address: \"127.0.0.1:9001\"}]\n"
                             "  - name: redis\n"
                             "    mode: tcp\n"
                             "    servers: [{name: r1, address: \"127.0.0.1:6379\"}]\n")),
              ElementsAre("t.yaml:2:59: 'backend': 'web' is an http backend; a tcp listener needs a tcp backend",
                          "t.yaml:3:48: 'backend': 'redis' is a tcp backend; an http listener needs an http "
                          "backend"));
}

TEST(TcpConfigTest, HttpOnlyKeysAreRefusedOnATcpBackend) {
  EXPECT_THAT(tcp_errors("    balance: hash\n"
                         "    hash_key: path\n"
                         "    persistence: {cookie: {name: SRV}}\n"
                         "    health_check: {type: http}\n"
                         "    pool: {max_idle_per_server: 2}\n"
                         "    timeouts: {server: 5s}\n"),
              ElementsAre("t.yaml:8:14: 'balance: hash' needs HTTP; a tcp backend takes roundrobin, leastconn, "
                          "source or random",
                          "t.yaml:9:15: 'hash_key': not for a tcp backend in backend 'redis'",
                          "t.yaml:10:18: 'persistence': a tcp backend takes 'source' only (cookies need HTTP) "
                          "in backend 'redis'",
                          "t.yaml:11:19: 'health_check': 'type: http' is for http backends; use tcp, redis or none in "
                          "backend 'redis'",
                          "t.yaml:12:11: 'pool': a tcp backend pools no connections in backend 'redis'",
                          "t.yaml:13:24: 'server': a tcp backend has no responses to wait for; use 'idle' in "
                          "'timeouts' of backend 'redis'"));
}

TEST(TcpConfigTest, ProxyProtocolIsForTcpBackends) {
  auto r = load(std::string(kTcp) + "    proxy_protocol: v2\n");
  ASSERT_THAT(errors_of(r), IsEmpty());
  EXPECT_EQ(r.config->backends[0].proxy_protocol, ProxyProtocol::kV2);
  EXPECT_THAT(errors_of(load("listeners:\n"
                             "  - {name: h, bind: \"127.0.0.1:8080\", backend: web}\n"
                             "backends:\n"
                             "  - name: web\n"
                             "    servers: [{name: w1, address: \"127.0.0.1:9001\"}]\n"
                             "    proxy_protocol: v2\n")),
              ElementsAre("t.yaml:6:21: 'proxy_protocol': only for a tcp backend (HTTP servers get "
                          "X-Forwarded-For) in backend 'web'"));
}

TEST(TcpConfigTest, RedisHealthCheck) {
  auto r = load(std::string(kTcp) + "    health_check: {type: redis, role: master, interval: 1s}\n");
  ASSERT_THAT(errors_of(r), IsEmpty());
  EXPECT_EQ(r.config->backends[0].health_check.type, HealthCheckType::kRedis);
  EXPECT_EQ(r.config->backends[0].health_check.role, RedisRole::kMaster);
  EXPECT_THAT(tcp_errors("    health_check: {type: tcp, role: master}\n"),
              ElementsAre("t.yaml:8:37: 'role': only with 'type: redis' in 'health_check' of backend 'redis'"));
}

TEST(TcpConfigTest, OnDownIsForTcpBackends) {
  auto r = load(std::string(kTcp) + "    on_down: close\n");
  ASSERT_THAT(errors_of(r), IsEmpty());
  EXPECT_EQ(r.config->backends[0].on_down, OnDown::kClose);
  EXPECT_EQ(load(kTcp).config->backends[0].on_down, OnDown::kKeep);
  EXPECT_THAT(errors_of(load("listeners:\n"
                             "  - {name: h, bind: \"127.0.0.1:8080\", backend: web}\n"
                             "backends:\n"
                             "  - name: web\n"
                             "    servers: [{name: w1, address: \"127.0.0.1:9001\"}]\n"
                             "    on_down: close\n")),
              ElementsAre("t.yaml:6:14: 'on_down': only for a tcp backend in backend 'web'"));
}

TEST(TcpConfigTest, IdleIsRefusedOnAnHttpBackend) {
  EXPECT_THAT(errors_of(load("listeners:\n"
                             "  - {name: h, bind: \"127.0.0.1:8080\", backend: web}\n"
                             "backends:\n"
                             "  - name: web\n"
                             "    servers: [{name: w1, address: \"127.0.0.1:9001\"}]\n"
                             "    timeouts: {idle: 5m}\n")),
              ElementsAre("t.yaml:6:22: 'idle': only for a tcp backend (an http backend uses 'server') in "
                          "'timeouts' of backend 'web'"));
}

TEST(TcpConfigTest, ATcpListenerHasOneBackendAndNoHttpFeatures) {
  EXPECT_THAT(errors_of(load("listeners:\n"
                             "  - name: r\n"
                             "    bind: \"127.0.0.1:6380\"\n"
                             "    mode: tcp\n"
                             "    routes: [{path_prefix: /, backend: redis}]\n"
                             "    redirect_https: 443\n"
                             "backends:\n"
                             "  - name: redis\n"
                             "    mode: tcp\n"
                             "    servers: [{name: r1, address: \"127.0.0.1:6379\"}]\n")),
              ElementsAre("t.yaml:5:13: 'routes': a tcp listener has one 'backend' (routes need HTTP)",
                          "t.yaml:6:21: 'redirect_https': a tcp listener relays bytes, it can't redirect"));
}

// TLS ends on a tcp listener (SPEC §8); ALPN is offered only as listed, and
// any protocol name may be (the relay speaks none of them).
TEST(TcpConfigTest, TlsOnATcpListenerOffersOnlyTheListedAlpn) {
  const auto dir = std::filesystem::temp_directory_path() / "sag-tcp-config-test-certs";
  std::filesystem::create_directories(dir);
  const std::string certs = dir.string();
  auto with_tls = [&](std::string_view mode, std::string_view alpn) {
    return load(std::string("listeners:\n"
                            "  - name: r\n"
                            "    bind: \"127.0.0.1:6380\"\n"
                            "    mode: ") + std::string(mode) + "\n"
                "    backend: redis\n"
                "    tls: {certificates: " + certs + std::string(alpn) + "}\n"
                "backends:\n"
                "  - name: redis\n"
                "    mode: " + std::string(mode) + "\n"
                "    servers: [{name: r1, address: \"127.0.0.1:6379\"}]\n");
  };
  auto none = with_tls("tcp", "");
  ASSERT_THAT(errors_of(none), IsEmpty());
  ASSERT_TRUE(none.config->listeners[0].tls);
  EXPECT_THAT(none.config->listeners[0].tls->alpn, IsEmpty());

  auto listed = with_tls("tcp", ", alpn: [redis, x-db/1]");
  ASSERT_THAT(errors_of(listed), IsEmpty());
  EXPECT_THAT(listed.config->listeners[0].tls->alpn, ElementsAre("redis", "x-db/1"));

  auto http = with_tls("http", "");
  ASSERT_THAT(errors_of(http), IsEmpty());
  EXPECT_THAT(http.config->listeners[0].tls->alpn, ElementsAre("h2", "http/1.1"));

  const auto col = std::to_string(std::string_view("    tls: {certificates: , alpn: [").size() + certs.size() + 1);
  EXPECT_THAT(errors_of(with_tls("http", ", alpn: [redis]")),
              ElementsAre("t.yaml:6:" + col + ": 'alpn': unknown protocol 'redis' (use h2, http/1.1)"));
  EXPECT_THAT(errors_of(with_tls("tcp", ", alpn: [\"a b\", redis, redis]")),
              ElementsAre("t.yaml:6:" + col + ": 'alpn': bad protocol name 'a b' (1 to 255 visible ASCII characters)",
                          "t.yaml:6:" + std::to_string(std::stoi(col) + 14) + ": 'alpn': 'redis' is listed twice"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sag::config
