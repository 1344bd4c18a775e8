#include "session/gateway_stats.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "affinity/model/server.h"

namespace sag::session {

// ----------------------------------------------------------- LatencyHistogram

size_t LatencyHistogram::bucket_of(int64_t us) {
  if (us < 16) return 0;
  const int log2 = 63 - std::countl_zero(static_cast<uint64_t>(us));  // >= 4
  const size_t octave = static_cast<size_t>(log2 - 4);
  if (octave >= (kBuckets - 1) / 4) return kBuckets - 1;
  const size_t sub = static_cast<size_t>(us >> (log2 - 2)) & 3;
  return 1 + octave * 4 + sub;
}

int64_t LatencyHistogram::lower_bound_us(size_t bucket) {
  if (bucket == 0) return 0;
  const size_t octave = (bucket - 1) / 4, sub = (bucket - 1) % 4;
  return static_cast<int64_t>(4 + sub) << (octave + 2);
}

int64_t LatencyHistogram::upper_bound_us(size_t bucket) {
  if (bucket == 0) return 16;
  const size_t octave = (bucket - 1) / 4, sub = (bucket - 1) % 4;
  return static_cast<int64_t>(5 + sub) << (octave + 2);
}

void LatencyHistogram::merge(const LatencyHistogram& o) {
  for (size_t i = 0; i < kBuckets; ++i)
    if (const uint64_t n = o.counts_[i].load(std::memory_order_relaxed))
      counts_[i].fetch_add(n, std::memory_order_relaxed);
}

uint64_t LatencyHistogram::count() const {
  uint64_t n = 0;
  for (const auto& c : counts_) n += c.load(std::memory_order_relaxed);
  return n;
}

double LatencyHistogram::quantile_us(double q) const {
  std::array<uint64_t, kBuckets> snap;
  uint64_t total = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    snap[i] = counts_[i].load(std::memory_order_relaxed);
    total += snap[i];
  }
  if (total == 0) return -1;
  if (q <= 0) q = 1e-9;
  if (q > 1) q = 1;
  // The rank of the wanted sample, 1-based.
  const double rank = std::max(1.0, std::ceil(q * static_cast<double>(total)));
  uint64_t below = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    if (snap[i] == 0) continue;
    if (static_cast<double>(below + snap[i]) >= rank) {
      const double lo = static_cast<double>(lower_bound_us(i));
      const double hi = static_cast<double>(upper_bound_us(i));
      const double frac = (rank - static_cast<double>(below)) / static_cast<double>(snap[i]);
      return lo + (hi - lo) * frac;
    }
    below += snap[i];
  }
  return static_cast<double>(upper_bound_us(kBuckets - 1));
}

// ---------------------------------------------------------- DurationHistogram

void DurationHistogram::merge(const DurationHistogram& o) {
  for (size_t i = 0; i <= kFinite; ++i)
    if (const uint64_t n = o.counts[i].load(std::memory_order_relaxed))
      counts[i].fetch_add(n, std::memory_order_relaxed);
  sum_us.fetch_add(o.sum_us.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

void DurationHistogram::record(std::chrono::microseconds d) {
  const int64_t us = d.count() < 0 ? 0 : d.count();
  size_t i = 0;
  while (i < kFinite && us > kBoundsUs[i]) ++i;
  counts[i].fetch_add(1, std::memory_order_relaxed);
  sum_us.fetch_add(static_cast<uint64_t>(us), std::memory_order_relaxed);
}

// --------------------------------------------------------------- GatewayStats

GatewayStats::GatewayStats(const config::GatewayConfig& config)
    : listener_count_(config.listeners.size() + kSpareListeners),
      backend_count_(config.backends.size() + kSpareBackends) {
  for (size_t i = 0; i < shards_.size(); ++i) {
    Tables& t = shards_[i];
    t.listeners = std::vector<ListenerStats>(listener_count_);
    for (const auto& b : config.backends)
      t.backends.push_back(std::make_unique<BackendStats>(b.servers.size() + kSpareServers));
    for (size_t k = 0; k < kSpareBackends; ++k)
      t.backends.push_back(std::make_unique<BackendStats>(2 * kSpareServers));
    t.backends.push_back(std::make_unique<BackendStats>(0));  // kNoBackend
  }
}

void GatewayStats::request_done(size_t backend, affinity::Server* server, unsigned status,
                                std::chrono::microseconds duration, bool persistent) {
  BackendStats* b = backend_at(shards_.local(), backend);
  if (!b) return;
  b->duration.record(duration);
  if (server) {
    server->count_response(status);
    if (server->index() < b->servers.size()) {
      ServerStats& s = b->servers[server->index()];
      s.latency.record(duration);
      if (persistent) base::bump(s.persistent);
    }
  } else if (status >= 100 && status < 600) {
    base::bump(b->gateway_responses[status - 100]);
  }
}

template <class F>
uint64_t GatewayStats::sum_listener(size_t listener, F f) const {
  if (listener >= listener_count_) return 0;
  return shards_.sum([&](const Tables& t) { return f(t.listeners[listener]); });
}

template <class F>
uint64_t GatewayStats::sum_backend(size_t backend, F f) const {
  return shards_.sum([&](const Tables& t) -> uint64_t {
    const BackendStats* b = backend_at(t, backend);
    return b ? f(*b) : 0;
  });
}

int64_t GatewayStats::connections_active(size_t listener) const {
  // Per worker the gauge can't go negative (a connection closes on the
  // worker that opened it), but sum as signed anyway.
  return static_cast<int64_t>(sum_listener(listener, [](const ListenerStats& l) {
    return static_cast<uint64_t>(l.active.load(std::memory_order_relaxed));
  }));
}

uint64_t GatewayStats::connections_refused(size_t listener) const {
  return sum_listener(listener,
                      [](const ListenerStats& l) { return l.refused.load(std::memory_order_relaxed); });
}

uint64_t GatewayStats::tls_handshakes(size_t listener, bool ok) const {
  return sum_listener(listener, [ok](const ListenerStats& l) {
    return (ok ? l.tls_ok : l.tls_failed).load(std::memory_order_relaxed);
  });
}

uint64_t GatewayStats::gateway_responses(size_t backend, unsigned status) const {
  if (status < 100 || status >= 600) return 0;
  return sum_backend(backend, [status](const BackendStats& b) {
    return b.gateway_responses[status - 100].load(std::memory_order_relaxed);
  });
}

uint64_t GatewayStats::retries(size_t backend) const {
  return sum_backend(backend,
                     [](const BackendStats& b) { return b.retries.load(std::memory_order_relaxed); });
}

std::optional<DurationHistogram> GatewayStats::duration(size_t backend) const {
  if (!backend_at(shards_[0], backend)) return std::nullopt;
  std::optional<DurationHistogram> h(std::in_place);
  for (size_t i = 0; i < shards_.size(); ++i) h->merge(backend_at(shards_[i], backend)->duration);
  return h;
}

std::optional<LatencyHistogram> GatewayStats::server_latency(size_t backend, size_t server) const {
  const BackendStats* b0 = backend_at(shards_[0], backend);
  if (!b0 || server >= b0->servers.size()) return std::nullopt;
  std::optional<LatencyHistogram> h(std::in_place);
  for (size_t i = 0; i < shards_.size(); ++i)
    h->merge(backend_at(shards_[i], backend)->servers[server].latency);
  return h;
}

uint64_t GatewayStats::persistent_requests(size_t backend, size_t server) const {
  return sum_backend(backend, [server](const BackendStats& b) -> uint64_t {
    return server < b.servers.size() ? b.servers[server].persistent.load(std::memory_order_relaxed)
                                     : 0;
  });
}

uint64_t GatewayStats::tcp_connections(size_t backend, size_t server) const {
  return sum_backend(backend, [server](const BackendStats& b) -> uint64_t {
    return server < b.servers.size() ? b.servers[server].tcp_connections.load(std::memory_order_relaxed)
                                     : 0;
  });
}

uint64_t GatewayStats::tcp_bytes(size_t backend, bool in) const {
  return sum_backend(backend, [in](const BackendStats& b) {
    return (in ? b.tcp_in : b.tcp_out).load(std::memory_order_relaxed);
  });
}

}  // namespace sag::session
