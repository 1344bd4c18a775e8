// GET /metrics: the exact text, and the exposition format line by line.
#include "gateway/admin/prometheus.h"

#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>

#include "affinity/affinity_resolver.h"
#include "tests/gateway/admin/admin_test_support.h"

namespace sag::gateway {
namespace {

using namespace std::chrono_literals;
using admin_test::Fixture;
using admin_test::lines;

TEST(LabelValueTest, Escapes) {
  std::string out;
  admin::append_label_value(out, "a\"b\\c\nd{e}=f,g");
  EXPECT_EQ(out, R"(a\"b\\c\nd{e}=f,g)");
}

TEST(MetricsTest, ExactText) {
  Fixture f;
  auto& s1 = f.srv("app", "s1");
  auto& s2 = f.srv("app", "s2");
  auto& a1 = f.srv("api", "a1");
  f.stats.request_done(0, &s1, 200, 2ms);
  f.stats.request_done(0, &s1, 200, 2ms, true);
  f.stats.request_done(0, &s1, 404, 30ms);
  f.stats.request_done(0, nullptr, 503, 500us);
  f.stats.request_done(1, &a1, 201, 12s);
  f.stats.request_done(session::GatewayStats::kNoBackend, nullptr, 400, 100us);
  f.stats.retry(0);
  f.stats.retry(0);
  f.stats.connection_opened(0);
  f.stats.connection_opened(0);
  f.stats.connection_closed(0);
  f.stats.connection_refused(1);
  f.stats.connection_refused(1);
  f.stats.tls_handshake(0, true);
  f.stats.tls_handshake(0, true);
  f.stats.tls_handshake(0, false);
  f.stats.affinity_store_error();
  auto& pc = f.backends.find("app")->persistence_counters();
  for (int i = 0; i < 3; ++i) pc.count(affinity::PersistOutcome::kCookieHit);
  for (int i = 0; i < 2; ++i) pc.count(affinity::PersistOutcome::kNew);
  pc.count(affinity::PersistOutcome::kRedispatch);
  for (int i = 0; i < 4; ++i) pc.count(affinity::PersistOutcome::kExpired);
  s2.set_healthy(false);

  const std::string expected =
      "# HELP gateway_requests_total Requests answered, by backend, server and exact status; "
      "server=\"-\": the gateway answered itself.\n"
      "# TYPE gateway_requests_total counter\n"
      "gateway_requests_total{backend=\"app\",server=\"s1\",code=\"200\"} 2\n"
      "gateway_requests_total{backend=\"app\",server=\"s1\",code=\"404\"} 1\n"
      "gateway_requests_total{backend=\"app\",server=\"-\",code=\"503\"} 1\n"
      "gateway_requests_total{backend=\"api\",server=\"a1\",code=\"201\"} 1\n"
      "gateway_requests_total{backend=\"-\",server=\"-\",code=\"400\"} 1\n"
      "# HELP gateway_request_duration_seconds Time from the request's first byte (or the "
      "connection's accept) to the end of its response.\n"
      "# TYPE gateway_request_duration_seconds histogram\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"0.001\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"0.005\"} 3\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"0.01\"} 3\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"0.025\"} 3\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"0.05\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"0.1\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"0.25\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"0.5\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"1\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"2.5\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"5\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"10\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"+Inf\"} 4\n"
      "gateway_request_duration_seconds_sum{backend=\"app\"} 0.034500\n"
      "gateway_request_duration_seconds_count{backend=\"app\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"0.001\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"0.005\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"0.01\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"0.025\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"0.05\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"0.1\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"0.25\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"0.5\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"1\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"2.5\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"5\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"10\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"+Inf\"} 1\n"
      "gateway_request_duration_seconds_sum{backend=\"api\"} 12.000000\n"
      "gateway_request_duration_seconds_count{backend=\"api\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"0.001\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"0.005\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"0.01\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"0.025\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"0.05\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"0.1\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"0.25\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"0.5\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"1\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"2.5\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"5\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"10\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"+Inf\"} 1\n"
      "gateway_request_duration_seconds_sum{backend=\"-\"} 0.000100\n"
      "gateway_request_duration_seconds_count{backend=\"-\"} 1\n"
      "# HELP gateway_server_up 1 when the server is up (healthy and not ejected), else 0.\n"
      "# TYPE gateway_server_up gauge\n"
      "gateway_server_up{backend=\"app\",server=\"s1\"} 1\n"
      "gateway_server_up{backend=\"app\",server=\"s2\"} 0\n"
      "gateway_server_up{backend=\"api\",server=\"a1\"} 1\n"
      "# HELP gateway_connections_active Open client connections.\n"
      "# TYPE gateway_connections_active gauge\n"
      "gateway_connections_active{listener=\"https\"} 1\n"
      "gateway_connections_active{listener=\"http\"} 0\n"
      "# HELP gateway_connections_refused_total Client connections closed at once because "
      "limits.max_connections was reached.\n"
      "# TYPE gateway_connections_refused_total counter\n"
      "gateway_connections_refused_total{listener=\"https\"} 0\n"
      "gateway_connections_refused_total{listener=\"http\"} 2\n"
      "# HELP gateway_tls_handshakes_total TLS handshakes on client connections, by result.\n"
      "# TYPE gateway_tls_handshakes_total counter\n"
      "gateway_tls_handshakes_total{listener=\"https\",result=\"ok\"} 2\n"
      "gateway_tls_handshakes_total{listener=\"https\",result=\"failed\"} 1\n"
      "# HELP gateway_persistence_total Persistence decisions, by outcome.\n"
      "# TYPE gateway_persistence_total counter\n"
      "gateway_persistence_total{backend=\"app\",result=\"hit\"} 3\n"
      "gateway_persistence_total{backend=\"app\",result=\"miss\"} 2\n"
      "gateway_persistence_total{backend=\"app\",result=\"redispatch\"} 1\n"
      "gateway_persistence_total{backend=\"app\",result=\"invalid\"} 0\n"
      "gateway_persistence_total{backend=\"app\",result=\"expired\"} 4\n"
      "gateway_persistence_total{backend=\"api\",result=\"hit\"} 0\n"
      "gateway_persistence_total{backend=\"api\",result=\"miss\"} 0\n"
      "gateway_persistence_total{backend=\"api\",result=\"redispatch\"} 0\n"
      "gateway_persistence_total{backend=\"api\",result=\"invalid\"} 0\n"
      "gateway_persistence_total{backend=\"api\",result=\"expired\"} 0\n"
      "# HELP gateway_retries_total Requests sent again to another server after a connection "
      "failure.\n"
      "# TYPE gateway_retries_total counter\n"
      "gateway_retries_total{backend=\"app\"} 2\n"
      "gateway_retries_total{backend=\"api\"} 0\n"
      "# HELP gateway_affinity_store_errors_total Affinity store operations that failed (e.g. "
      "Redis unreachable).\n"
      "# TYPE gateway_affinity_store_errors_total counter\n"
      "gateway_affinity_store_errors_total 1\n";
  std::string got = f.handler.metrics();
  // The reload families end the text; their timestamp is the start's.
  const size_t reloads = got.find("# HELP gateway_config_reloads_total");
  ASSERT_NE(reloads, std::string::npos);
  const std::string tail = got.substr(reloads);
  got.resize(reloads);
  EXPECT_NE(tail.find("gateway_config_reloads_total{result=\"success\"} 0\n"
                      "gateway_config_reloads_total{result=\"failure\"} 0\n"),
            std::string::npos)
      << tail;
  EXPECT_NE(tail.find("# TYPE gateway_config_last_reload_success_timestamp_seconds gauge\n"
                      "gateway_config_last_reload_success_timestamp_seconds 1"),
            std::string::npos)
      << tail;
  // Line by line first, for a readable failure.
  const auto e = lines(expected), g = lines(got);
  for (size_t i = 0; i < std::min(e.size(), g.size()); ++i) ASSERT_EQ(g[i], e[i]) << "line " << i;
  EXPECT_EQ(got, expected);
}

TEST(MetricsTest, EveryLineIsWellFormed) {
  Fixture f;
  f.stats.request_done(0, &f.srv("app", "s1"), 200, 2ms);
  const std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? [0-9]+(\.[0-9]+)?$)");
  const std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  std::string family;
  for (const auto& l : lines(f.handler.metrics())) {
    if (l.starts_with("#")) {
      EXPECT_TRUE(std::regex_match(l, comment)) << l;
    } else {
      EXPECT_TRUE(std::regex_match(l, sample)) << l;
    }
  }
}

}  // namespace
}  // namespace sag::gateway
