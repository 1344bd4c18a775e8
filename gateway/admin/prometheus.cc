#include "gateway/admin/prometheus.h"

#include <array>
#include <cinttypes>
#include <cstdio>
#include <initializer_list>
#include <utility>

#include "gateway/admin/server_view.h"

namespace sag::gateway::admin {
namespace {

using Label = std::pair<std::string_view, std::string_view>;

// Microseconds as seconds with 6 decimals, exactly (no floating point).
void append_seconds(std::string& out, uint64_t us) {
  char buf[48];
  const int n = std::snprintf(buf, sizeof buf, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
  out.append(buf, static_cast<size_t>(n));
}

void metric_header(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// name{k="v",...} value\n
void metric_line(std::string& out, std::string_view name, std::initializer_list<Label> labels,
                 uint64_t value) {
  out += name;
  if (labels.size() > 0) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out += ',';
      first = false;
      out += k;
      out += "=\"";
      append_label_value(out, v);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  append_u64(out, value);
  out += '\n';
}

// Writes the metrics of one scrape into out_; one method per family group.
class MetricsWriter {
 public:
  MetricsWriter(std::string& out, const config::GatewayConfig& config,
                const affinity::BackendSet& backends, const session::GatewayStats& stats,
                std::span<const uint32_t> listener_ids)
      : out_(out), cfg_(config), all_(backends.backends()), stats_(stats), listener_ids_(listener_ids) {}

  void requests_total();
  void request_durations();
  void servers_up();
  void connections();
  void persistence();
  void retries_and_store_errors();
  void reloads();
  void tcp();

 private:
  std::string_view code_text(unsigned status) {
    std::snprintf(code_, sizeof code_, "%u", status);
    return std::string_view(code_, 3);
  }
  void histogram(std::string_view backend, const session::DurationHistogram& h, bool skip_empty);
  // The stats id of config listener `li`.
  size_t lid(size_t li) const { return li < listener_ids_.size() ? listener_ids_[li] : li; }

  std::string& out_;
  const config::GatewayConfig& cfg_;
  std::span<const std::unique_ptr<affinity::Backend>> all_;
  const session::GatewayStats& stats_;
  std::span<const uint32_t> listener_ids_;
  char code_[4];
};

void MetricsWriter::requests_total() {
  metric_header(out_, "gateway_requests_total", "counter",
                "Requests answered, by backend, server and exact status; server=\"-\": the "
                "gateway answered itself.");
  for (size_t bi = 0; bi < all_.size(); ++bi) {
    const affinity::Backend& b = *all_[bi];
    for (const affinity::Server* s : b.servers())
      for (unsigned st = 100; st < 600; ++st)
        if (const uint64_t n = s->responses(st))
          metric_line(out_, "gateway_requests_total",
                      {{"backend", b.name()}, {"server", s->name()}, {"code", code_text(st)}}, n);
    for (unsigned st = 100; st < 600; ++st)
      if (const uint64_t n = stats_.gateway_responses(b.id(), st))
        metric_line(out_, "gateway_requests_total",
                    {{"backend", b.name()}, {"server", "-"}, {"code", code_text(st)}}, n);
  }
  for (unsigned st = 100; st < 600; ++st)
    if (const uint64_t n = stats_.gateway_responses(session::GatewayStats::kNoBackend, st))
      metric_line(out_, "gateway_requests_total",
                  {{"backend", "-"}, {"server", "-"}, {"code", code_text(st)}}, n);
}

void MetricsWriter::histogram(std::string_view backend, const session::DurationHistogram& h,
                              bool skip_empty) {
  using H = session::DurationHistogram;
  std::array<uint64_t, H::kFinite + 1> c;
  uint64_t total = 0;
  for (size_t i = 0; i < c.size(); ++i) total += c[i] = h.counts[i].load(std::memory_order_relaxed);
  if (skip_empty && total == 0) return;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    cumulative += c[i];
    metric_line(out_, "gateway_request_duration_seconds_bucket",
                {{"backend", backend}, {"le", H::kLabels[i]}}, cumulative);
  }
  out_ += "gateway_request_duration_seconds_sum{backend=\"";
  append_label_value(out_, backend);
  out_ += "\"} ";
  append_seconds(out_, h.sum_us.load(std::memory_order_relaxed));
  out_ += '\n';
  metric_line(out_, "gateway_request_duration_seconds_count", {{"backend", backend}}, total);
}

void MetricsWriter::request_durations() {
  metric_header(out_, "gateway_request_duration_seconds", "histogram",
                "Time from the request's first byte (or the connection's accept) to the end "
                "of its response.");
  for (size_t bi = 0; bi < all_.size(); ++bi)
    if (const auto h = stats_.duration(all_[bi]->id())) histogram(all_[bi]->name(), *h, false);
  if (const auto h = stats_.duration(session::GatewayStats::kNoBackend)) histogram("-", *h, true);
}

void MetricsWriter::servers_up() {
  metric_header(out_, "gateway_server_up", "gauge",
                "1 when the server is up (healthy and not ejected), else 0.");
  for (const auto& b : all_)
    for (const affinity::Server* s : b->servers())
      metric_line(out_, "gateway_server_up", {{"backend", b->name()}, {"server", s->name()}},
                  s->up() ? 1 : 0);
}

void MetricsWriter::connections() {
  metric_header(out_, "gateway_connections_active", "gauge", "Open client connections.");
  for (size_t li = 0; li < cfg_.listeners.size(); ++li) {
    const int64_t n = stats_.connections_active(lid(li));
    metric_line(out_, "gateway_connections_active", {{"listener", cfg_.listeners[li].name}},
                n > 0 ? static_cast<uint64_t>(n) : 0);
  }

  metric_header(out_, "gateway_connections_refused_total", "counter",
                "Client connections closed at once because limits.max_connections was reached.");
  for (size_t li = 0; li < cfg_.listeners.size(); ++li)
    metric_line(out_, "gateway_connections_refused_total", {{"listener", cfg_.listeners[li].name}},
                stats_.connections_refused(lid(li)));

  metric_header(out_, "gateway_tls_handshakes_total", "counter",
                "TLS handshakes on client connections, by result.");
  for (size_t li = 0; li < cfg_.listeners.size(); ++li) {
    if (!cfg_.listeners[li].tls) continue;
    metric_line(out_, "gateway_tls_handshakes_total",
                {{"listener", cfg_.listeners[li].name}, {"result", "ok"}},
                stats_.tls_handshakes(lid(li), true));
    metric_line(out_, "gateway_tls_handshakes_total",
                {{"listener", cfg_.listeners[li].name}, {"result", "failed"}},
                stats_.tls_handshakes(lid(li), false));
  }
}

void MetricsWriter::persistence() {
  metric_header(out_, "gateway_persistence_total", "counter",
                "Persistence decisions, by outcome.");
  for (const auto& b : all_) {
    const auto& pc = b->persistence_counters();
    const std::pair<const char*, uint64_t> results[] = {
        {"hit", pc.total(affinity::PersistenceCounters::kHit)},
        {"miss", pc.total(affinity::PersistenceCounters::kMiss)},
        {"redispatch", pc.total(affinity::PersistenceCounters::kRedispatch)},
        {"invalid", pc.total(affinity::PersistenceCounters::kInvalid)},
        {"expired", pc.total(affinity::PersistenceCounters::kExpired)},
    };
    for (const auto& [result, n] : results)
      metric_line(out_, "gateway_persistence_total", {{"backend", b->name()}, {"result", result}}, n);
  }
}

void MetricsWriter::retries_and_store_errors() {
  metric_header(out_, "gateway_retries_total", "counter",
                "Requests sent again to another server after a connection failure.");
  for (size_t bi = 0; bi < all_.size(); ++bi)
    metric_line(out_, "gateway_retries_total", {{"backend", all_[bi]->name()}}, stats_.retries(all_[bi]->id()));

  metric_header(out_, "gateway_affinity_store_errors_total", "counter",
                "Affinity store operations that failed (e.g. Redis unreachable).");
  metric_line(out_, "gateway_affinity_store_errors_total", {}, stats_.affinity_store_errors());
}

void MetricsWriter::tcp() {
  bool any = false;
  for (const auto& b : all_) any |= b->config().mode == config::ProxyMode::kTcp;
  if (!any) return;
  metric_header(out_, "gateway_tcp_connections_total", "counter",
                "TCP connections relayed, by backend and the server they reached (counted when they end).");
  for (const auto& b : all_) {
    if (b->config().mode != config::ProxyMode::kTcp) continue;
    for (const affinity::Server* s : b->servers())
      metric_line(out_, "gateway_tcp_connections_total", {{"backend", b->name()}, {"server", s->name()}},
                  stats_.tcp_connections(b->id(), s->index()));
  }
  metric_header(out_, "gateway_tcp_bytes_total", "counter",
                "Bytes relayed on TCP connections: in from clients, out to them (counted when they end).");
  for (const auto& b : all_) {
    if (b->config().mode != config::ProxyMode::kTcp) continue;
    metric_line(out_, "gateway_tcp_bytes_total", {{"backend", b->name()}, {"direction", "in"}},
                stats_.tcp_bytes(b->id(), true));
    metric_line(out_, "gateway_tcp_bytes_total", {{"backend", b->name()}, {"direction", "out"}},
                stats_.tcp_bytes(b->id(), false));
  }
}

void MetricsWriter::reloads() {
  metric_header(out_, "gateway_config_reloads_total", "counter",
                "Configuration reloads (SIGHUP), by result; a failed one changed nothing.");
  metric_line(out_, "gateway_config_reloads_total", {{"result", "success"}}, stats_.reloads(true));
  metric_line(out_, "gateway_config_reloads_total", {{"result", "failure"}}, stats_.reloads(false));
  metric_header(out_, "gateway_config_last_reload_success_timestamp_seconds", "gauge",
                "When the configuration in use was loaded (Unix seconds): the last successful "
                "reload, or the start.");
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", stats_.last_reload_success_seconds());
  out_ += "gateway_config_last_reload_success_timestamp_seconds ";
  out_ += buf;
  out_ += '\n';
}

}  // namespace

void append_label_value(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

std::string prometheus_metrics(const config::GatewayConfig& config,
                               const affinity::BackendSet& backends,
                               const session::GatewayStats& stats,
                               std::span<const uint32_t> listener_ids) {
  std::string out;
  out.reserve(8192);
  MetricsWriter w(out, config, backends, stats, listener_ids);
  w.requests_total();
  w.request_durations();
  w.servers_up();
  w.connections();
  w.persistence();
  w.retries_and_store_errors();
  w.tcp();
  w.reloads();
  return out;
}

}  // namespace sag::gateway::admin
