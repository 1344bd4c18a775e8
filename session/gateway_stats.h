// Process-wide counters for the admin listener (docs/behaviour.md#admin-listener): the request path
// increments, the admin thread reads.
//
// One GatewayStats is created per process from the config, before the
// workers, and passed by reference to every worker and to the AdminServer.
// It is sized once, at start: listeners by ListenerRuntime::id, backends by
// Backend::id(), servers by Server::index() (ids stable across reloads),
// with room for a few listeners, backends and servers that reloads add.
// Out-of-range ids are ignored, never UB: what a reload adds past that room
// has only the counters kept on Server and Backend themselves until the next
// restart or upgrade.
//
// Threads:
//  - worker threads call the mutators (request_done, retry, connection_*,
//    tls_handshake); the affinity store calls affinity_store_error from
//    whatever thread notices the error;
//  - the admin thread reads (the const accessors).
// Every counter lives once per worker (base::Sharded): a worker writes only
// its own slot, so no cache line is written by two workers, and readers sum
// the slots. Counters are relaxed atomics: no lock and no allocation on any
// increment. A reader may see one counter of a request updated and another
// not yet; exporters take care that what they print stays self-consistent
// (e.g. a histogram's _count is the sum of its buckets). Histograms are
// returned to readers as merged copies.
//
// Per-server status codes live in affinity::Server (count_response), which
// request_done fills; the path must not call Server::count_response itself.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "config/base/worker_shard.h"
#include "config/gateway_config.h"

namespace sag::affinity {
class Server;
}

namespace sag::session {

// Per-server latency for the stats page's p50/p99: a fixed log-linear
// histogram (4 sub-buckets per power of two, so a quantile is within about
// 12% of the truth), from 16 us to about 70 s; the last bucket takes
// everything above.
class LatencyHistogram {
 public:
  static constexpr size_t kBuckets = 1 + 4 * 22;  // [0,16us) + 22 octaves

  LatencyHistogram() = default;
  // A copy is a snapshot (relaxed loads); merge adds another's counts.
  LatencyHistogram(const LatencyHistogram& o) { merge(o); }
  LatencyHistogram& operator=(const LatencyHistogram&) = delete;
  void merge(const LatencyHistogram& o);

  void record(std::chrono::microseconds d) {
    counts_[bucket_of(d.count())].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t count() const;
  // Estimated q-quantile (0 < q <= 1) in microseconds, interpolated inside
  // its bucket; negative when there is no sample.
  double quantile_us(double q) const;

  static size_t bucket_of(int64_t us);
  static int64_t lower_bound_us(size_t bucket);  // inclusive
  static int64_t upper_bound_us(size_t bucket);  // exclusive

 private:
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
};

// gateway_request_duration_seconds: Prometheus' default buckets.
struct DurationHistogram {
  static constexpr size_t kFinite = 12;
  // Upper bounds (le) in microseconds, then their text form in seconds.
  static constexpr std::array<int64_t, kFinite> kBoundsUs = {
      1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
  static constexpr std::array<const char*, kFinite + 1> kLabels = {
      "0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"};

  DurationHistogram() = default;
  // A copy is a snapshot (relaxed loads); merge adds another's counts.
  DurationHistogram(const DurationHistogram& o) { merge(o); }
  DurationHistogram& operator=(const DurationHistogram&) = delete;
  void merge(const DurationHistogram& o);

  void record(std::chrono::microseconds d);

  // Non-cumulative: counts[i] holds le[i-1] < d <= le[i]; counts[kFinite] is
  // above the last bound.
  std::array<std::atomic<uint64_t>, kFinite + 1> counts{};
  std::atomic<uint64_t> sum_us{0};
};

class GatewayStats {
 public:
  // Request not attributed to a backend (bad request head, no route,
  // redirect listener): reported with backend="-".
  static constexpr size_t kNoBackend = static_cast<size_t>(-1);
  // Room for what reloads add (see above).
  static constexpr size_t kSpareListeners = 8;
  static constexpr size_t kSpareBackends = 4;
  static constexpr size_t kSpareServers = 8;

  explicit GatewayStats(const config::GatewayConfig& config);
  GatewayStats(const GatewayStats&) = delete;
  GatewayStats& operator=(const GatewayStats&) = delete;

  // ------------------------------------------------ worker threads: per request
  // Once per request, when its response ended (or failed), with its final
  // status (the one the access log writes). `server`: the server that gave
  // the response; nullptr when the gateway answered itself (400, 502, 503,
  // 504, ...; server="-"). `duration`: the access log's Tt. `persistent`:
  // the request went to `server` because of its persistence (cookie, learn
  // or source hit): counted as the server's "pinned" requests.
  void request_done(size_t backend, affinity::Server* server, unsigned status,
                    std::chrono::microseconds duration, bool persistent = false);
  // A TCP connection (SPEC §8) ended: `server` (an id) is the one it reached,
  // `in` the bytes from the client, `out` those to it.
  void tcp_done(size_t backend, size_t server, uint64_t in, uint64_t out) {
    BackendStats* b = backend_at(shards_.local(), backend);
    if (!b) return;
    base::bump(b->tcp_in, in);
    base::bump(b->tcp_out, out);
    if (server < b->servers.size()) base::bump(b->servers[server].tcp_connections);
  }
  // Once per retry (an attempt on another server after a connection failure).
  void retry(size_t backend) {
    if (BackendStats* b = backend_at(shards_.local(), backend)) base::bump(b->retries);
  }

  // --------------------------------------------- worker threads: per connection
  // A client connection accepted (after the max_connections check) and its
  // end. Exactly one closed per opened.
  void connection_opened(size_t listener) {
    if (ListenerStats* l = listener_at(listener)) l->active.fetch_add(1, std::memory_order_relaxed);
  }
  void connection_closed(size_t listener) {
    if (ListenerStats* l = listener_at(listener)) l->active.fetch_sub(1, std::memory_order_relaxed);
  }
  // A client connection closed at once because limits.max_connections was
  // reached. Only refusals write it: an accepted connection pays nothing.
  void connection_refused(size_t listener) {
    if (ListenerStats* l = listener_at(listener)) base::bump(l->refused);
  }
  // A TLS handshake ended (ok or failed: error, timeout, client gone).
  void tls_handshake(size_t listener, bool ok) {
    if (ListenerStats* l = listener_at(listener)) base::bump(ok ? l->tls_ok : l->tls_failed);
  }

  // -------------------------------------------------------- affinity store
  void affinity_store_error() { store_errors_.fetch_add(1, std::memory_order_relaxed); }

  // ------------------------------------------------- reloads (main thread)
  // A SIGHUP reload ended; `at`: when (a success's time is exported).
  void reload_done(bool ok, std::chrono::system_clock::time_point at) {
    (ok ? reloads_ok_ : reloads_failed_).fetch_add(1, std::memory_order_relaxed);
    if (ok) last_reload_ok_ns_.store(at.time_since_epoch() / std::chrono::nanoseconds(1), std::memory_order_relaxed);
  }
  uint64_t reloads(bool ok) const {
    return (ok ? reloads_ok_ : reloads_failed_).load(std::memory_order_relaxed);
  }
  // Unix seconds of the last successful reload; the start until the first.
  double last_reload_success_seconds() const {
    return static_cast<double>(last_reload_ok_ns_.load(std::memory_order_relaxed)) / 1e9;
  }

  // ------------------------------------------------------ admin thread: reads
  size_t listener_count() const { return listener_count_; }
  size_t backend_count() const { return backend_count_; }  // ids below this (kNoBackend apart)
  int64_t connections_active(size_t listener) const;
  uint64_t connections_refused(size_t listener) const;
  uint64_t tls_handshakes(size_t listener, bool ok) const;
  // Gateway answers of this backend (server="-") with this exact status.
  uint64_t gateway_responses(size_t backend, unsigned status) const;
  uint64_t retries(size_t backend) const;
  // Merged over the workers; empty for an unknown backend or server.
  std::optional<DurationHistogram> duration(size_t backend) const;
  std::optional<LatencyHistogram> server_latency(size_t backend, size_t server) const;
  uint64_t persistent_requests(size_t backend, size_t server) const;
  uint64_t tcp_connections(size_t backend, size_t server) const;
  // Bytes of a tcp backend's connections: from clients (`in`) or to them.
  uint64_t tcp_bytes(size_t backend, bool in) const;
  uint64_t affinity_store_errors() const { return store_errors_.load(std::memory_order_relaxed); }

 private:
  struct ListenerStats {
    std::atomic<int64_t> active{0};
    std::atomic<uint64_t> tls_ok{0};
    std::atomic<uint64_t> tls_failed{0};
    std::atomic<uint64_t> refused{0};
  };
  struct ServerStats {
    LatencyHistogram latency;
    std::atomic<uint64_t> persistent{0};
    std::atomic<uint64_t> tcp_connections{0};
  };
  struct BackendStats {
    explicit BackendStats(size_t servers) : servers(servers) {}
    std::array<std::atomic<uint64_t>, 500> gateway_responses{};  // status - 100
    std::atomic<uint64_t> retries{0};
    std::atomic<uint64_t> tcp_in{0};
    std::atomic<uint64_t> tcp_out{0};
    DurationHistogram duration;
    std::vector<ServerStats> servers;
  };
  // One worker's counters: listeners by position, one BackendStats per
  // config backend, then one for kNoBackend (no servers).
  struct Tables {
    std::vector<ListenerStats> listeners;
    std::vector<std::unique_ptr<BackendStats>> backends;
  };

  ListenerStats* listener_at(size_t listener) {
    Tables& t = shards_.local();
    return listener < t.listeners.size() ? &t.listeners[listener] : nullptr;
  }
  static BackendStats* backend_at(Tables& t, size_t backend) {
    if (backend == kNoBackend) return t.backends.back().get();
    return backend < t.backends.size() - 1 ? t.backends[backend].get() : nullptr;
  }
  static const BackendStats* backend_at(const Tables& t, size_t backend) {
    return backend_at(const_cast<Tables&>(t), backend);
  }
  // Sum of f(listener stats) over the workers; 0 for an unknown listener.
  template <class F>
  uint64_t sum_listener(size_t listener, F f) const;
  template <class F>
  uint64_t sum_backend(size_t backend, F f) const;

  size_t listener_count_;
  size_t backend_count_;
  base::Sharded<Tables> shards_;
  std::atomic<uint64_t> store_errors_{0};
  std::atomic<uint64_t> reloads_ok_{0};
  std::atomic<uint64_t> reloads_failed_{0};
  std::atomic<int64_t> last_reload_ok_ns_{
      std::chrono::system_clock::now().time_since_epoch() / std::chrono::nanoseconds(1)};
};

}  // namespace sag::session
