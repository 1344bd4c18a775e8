// GatewayStats: what each increment lands in, the histograms' buckets and
// quantiles, and that bad indexes are ignored.
#include "session/gateway_stats.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "affinity/model/backend.h"
#include "affinity/model/server.h"

namespace sag::session {
namespace {

using namespace std::chrono_literals;

config::GatewayConfig make_config() {
  config::GatewayConfig cfg;
  cfg.listeners.resize(2);
  cfg.listeners[0].name = "https";
  cfg.listeners[1].name = "http";
  config::BackendConfig app;
  app.name = "app";
  for (const char* n : {"s1", "s2"}) {
    config::ServerConfig s;
    s.name = n;
    s.address = "127.0.0.1:1";
    s.endpoint = *config::Endpoint::parse(s.address);
    app.servers.push_back(s);
  }
  cfg.backends.push_back(app);
  return cfg;
}

TEST(LatencyHistogramTest, Buckets) {
  using H = LatencyHistogram;
  EXPECT_EQ(H::bucket_of(-5), 0u);
  EXPECT_EQ(H::bucket_of(0), 0u);
  EXPECT_EQ(H::bucket_of(15), 0u);
  EXPECT_EQ(H::bucket_of(16), 1u);
  EXPECT_EQ(H::bucket_of(19), 1u);
  EXPECT_EQ(H::bucket_of(20), 2u);
  EXPECT_EQ(H::bucket_of(31), 4u);
  EXPECT_EQ(H::bucket_of(32), 5u);
  EXPECT_EQ(H::bucket_of(INT64_MAX), H::kBuckets - 1);
  // Every bucket's bounds contain exactly the values mapped to it.
  for (size_t b = 0; b + 1 < H::kBuckets; ++b) {
    EXPECT_EQ(H::bucket_of(H::lower_bound_us(b)), b) << b;
    EXPECT_EQ(H::bucket_of(H::upper_bound_us(b) - 1), b) << b;
    EXPECT_EQ(H::upper_bound_us(b), H::lower_bound_us(b + 1)) << b;
  }
  // The top bucket starts near a minute.
  EXPECT_GT(H::lower_bound_us(H::kBuckets - 1), 50'000'000);
}

TEST(LatencyHistogramTest, Quantiles) {
  LatencyHistogram h;
  EXPECT_LT(h.quantile_us(0.5), 0);
  for (int i = 0; i < 98; ++i) h.record(1000us);
  h.record(50ms);
  h.record(50ms);
  EXPECT_EQ(h.count(), 100u);
  const double p50 = h.quantile_us(0.5), p99 = h.quantile_us(0.99);
  EXPECT_GE(p50, 896);  // 1000 us lies in [896, 1024)
  EXPECT_LE(p50, 1024);
  EXPECT_GE(p99, 49152);  // 50000 us lies in [49152, 57344)
  EXPECT_LE(p99, 57344);
  EXPECT_LE(h.quantile_us(1.0), 57344);
}

TEST(DurationHistogramTest, BucketsAreUpperInclusive) {
  DurationHistogram h;
  h.record(1000us);    // le 0.001
  h.record(1001us);    // le 0.005
  h.record(10s);       // le 10
  h.record(10001ms);   // +Inf
  h.record(-1us);      // clamped to 0
  EXPECT_EQ(h.counts[0].load(), 2u);
  EXPECT_EQ(h.counts[1].load(), 1u);
  EXPECT_EQ(h.counts[11].load(), 1u);
  EXPECT_EQ(h.counts[12].load(), 1u);
  EXPECT_EQ(h.sum_us.load(), 1000u + 1001u + 10000000u + 10001000u);
}

TEST(GatewayStatsTest, CountsWhereTheyBelong) {
  const auto cfg = make_config();
  affinity::BackendSet backends(cfg);
  GatewayStats st(cfg);
  auto* s1 = backends.find("app")->find_server("s1");
  auto* s2 = backends.find("app")->find_server("s2");
  // With room for what reloads add.
  EXPECT_EQ(st.listener_count(), 2u + GatewayStats::kSpareListeners);
  EXPECT_EQ(st.backend_count(), 1u + GatewayStats::kSpareBackends);

  st.request_done(0, s1, 200, 3ms, true);
  st.request_done(0, s1, 200, 3ms);
  st.request_done(0, s2, 503, 3ms);   // the server's own 503
  st.request_done(0, nullptr, 503, 1ms);  // the gateway's
  st.request_done(GatewayStats::kNoBackend, nullptr, 400, 1ms);
  EXPECT_EQ(s1->responses(200), 2u);
  EXPECT_EQ(s2->responses(503), 1u);
  EXPECT_EQ(st.gateway_responses(0, 503), 1u);
  EXPECT_EQ(st.gateway_responses(0, 200), 0u);
  EXPECT_EQ(st.gateway_responses(GatewayStats::kNoBackend, 400), 1u);
  EXPECT_EQ(st.persistent_requests(0, 0), 1u);
  EXPECT_EQ(st.persistent_requests(0, 1), 0u);
  EXPECT_EQ(st.server_latency(0, 0)->count(), 2u);
  EXPECT_EQ(st.server_latency(0, 1)->count(), 1u);
  uint64_t n = 0;
  const auto d0 = st.duration(0);
  for (const auto& c : d0->counts) n += c.load();
  EXPECT_EQ(n, 4u);

  st.retry(0);
  EXPECT_EQ(st.retries(0), 1u);
  st.connection_opened(1);
  st.connection_opened(1);
  st.connection_closed(1);
  EXPECT_EQ(st.connections_active(1), 1);
  EXPECT_EQ(st.connections_active(0), 0);
  st.connection_refused(1);
  EXPECT_EQ(st.connections_refused(1), 1u);
  EXPECT_EQ(st.connections_refused(0), 0u);
  EXPECT_EQ(st.connections_active(1), 1);  // a refusal is no open connection
  st.tls_handshake(0, true);
  st.tls_handshake(0, false);
  st.tls_handshake(0, false);
  EXPECT_EQ(st.tls_handshakes(0, true), 1u);
  EXPECT_EQ(st.tls_handshakes(0, false), 2u);
  st.affinity_store_error();
  EXPECT_EQ(st.affinity_store_errors(), 1u);
}

TEST(GatewayStatsTest, BadIndexesAreIgnored) {
  const auto cfg = make_config();
  GatewayStats st(cfg);
  // Past the room kept for reloads.
  st.request_done(100, nullptr, 200, 1ms);
  st.request_done(0, nullptr, 99, 1ms);
  st.request_done(0, nullptr, 600, 1ms);
  st.retry(100);
  st.connection_opened(100);
  st.connection_closed(100);
  st.tls_handshake(100, true);
  st.connection_refused(100);
  EXPECT_EQ(st.connections_refused(100), 0u);
  EXPECT_EQ(st.retries(100), 0u);
  EXPECT_EQ(st.connections_active(100), 0);
  EXPECT_EQ(st.tls_handshakes(100, true), 0u);
  EXPECT_FALSE(st.duration(100));
  EXPECT_FALSE(st.server_latency(0, 100));
  EXPECT_EQ(st.persistent_requests(0, 100), 0u);
  EXPECT_EQ(st.gateway_responses(0, 99), 0u);
}

// Ids a reload adds (a listener, a backend, a server) count within the room
// kept at start.
TEST(GatewayStatsTest, IdsAReloadAddsCountWithinTheRoomKept) {
  const auto cfg = make_config();
  GatewayStats st(cfg);
  const size_t new_listener = cfg.listeners.size();
  const size_t new_backend = cfg.backends.size();
  st.connection_refused(new_listener);
  st.retry(new_backend);
  EXPECT_EQ(st.connections_refused(new_listener), 1u);
  EXPECT_EQ(st.retries(new_backend), 1u);
  EXPECT_TRUE(st.server_latency(0, cfg.backends[0].servers.size()));
  EXPECT_TRUE(st.server_latency(new_backend, 0));
}

// Workers write their own slots (base::Sharded); a worker past the slot
// count and every other thread share slot 0. Readers sum: nothing is lost
// either way.
TEST(GatewayStatsTest, ConcurrentIncrementsAreNotLost) {
  const size_t saved = base::worker_shards();
  base::set_worker_shards(3);  // slot 0 + workers 0 and 1; threads 3, 4 fall back to 0
  const auto cfg = make_config();
  affinity::BackendSet backends(cfg);
  GatewayStats st(cfg);
  auto* s1 = backends.find("app")->find_server("s1");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      base::t_worker_slot = static_cast<size_t>(t) + 1;
      for (int i = 0; i < 10000; ++i) {
        st.request_done(0, s1, 200, 1ms, true);
        st.request_done(0, nullptr, 502, 1ms);
        st.connection_opened(0);
        st.connection_closed(0);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(s1->responses(200), 40000u);
  EXPECT_EQ(st.gateway_responses(0, 502), 40000u);
  EXPECT_EQ(st.persistent_requests(0, 0), 40000u);
  EXPECT_EQ(st.connections_active(0), 0);
  EXPECT_EQ(st.duration(0)->sum_us.load(), 80000u * 1000u);
  EXPECT_EQ(st.server_latency(0, 0)->count(), 40000u);
  base::set_worker_shards(saved);
}

}  // namespace
}  // namespace sag::session
