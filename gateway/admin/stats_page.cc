#include "gateway/admin/stats_page.h"

#include <algorithm>
#include <array>
#include <cstdio>

namespace sag::gateway::admin {
namespace {

constexpr std::string_view kHead =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta http-equiv=\"refresh\" content=\"5\"><title>sag: statistics</title>\n<style>"
    "body{font-family:sans-serif;margin:1em 2em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #bbb;padding:2px 8px;text-align:right;white-space:nowrap}"
    "th{background:#eee}td.l{text-align:left}tr.down td{background:#fdd}"
    "tr.drain td{background:#ffd}tr.maint td{background:#e4e4e4}"
    "tr.gw td{color:#555;font-style:italic}small{color:#666}"
    // Long tables (tens of servers) keep their column names in view.
    "th{position:sticky;top:0}p.sum{margin:.2em 0}"
    ".sw{display:inline-block;width:1em;border:1px solid #bbb}"
    "</style></head><body>\n<h1>sag statistics</h1>\n<p>";

constexpr std::string_view kTableHead =
    "\n<table>\n<tr><th>server</th><th>address</th><th>state</th>"
    "<th>health</th><th>weight</th><th>active</th><th>requests</th><th>2xx</th>"
    "<th>3xx</th><th>4xx</th><th>5xx</th><th>pinned</th><th>p50</th><th>p99</th>"
    "<th>last check</th></tr>\n";

constexpr std::string_view kFoot =
    "<p><small><b>Rows</b>: white: ready and up; "
    "<span class=\"sw\" style=\"background:#fdd\">&nbsp;</span> down (failed its health "
    "checks, or ejected after failures on real traffic): takes no request, its sessions move; "
    "<span class=\"sw\" style=\"background:#ffd\">&nbsp;</span> drain: keeps its sessions, "
    "takes no new ones; "
    "<span class=\"sw\" style=\"background:#e4e4e4\">&nbsp;</span> maint: takes nothing, "
    "its sessions move; <i>gateway</i>: answers the gateway gave itself (502, 503, 504).<br>"
    "<b>Columns</b>: state: set by an operator (ready, drain, maint); health: from checks; "
    "weight: share of new sessions; active: requests in flight; requests, 2xx-5xx: since "
    "start; pinned: requests served because of persistence (cookie, learn or source); "
    "p50/p99: whole request time; last check: the last health check's result.<br>"
    "Refreshes every 5 s. "
    "<a href=\"/metrics\">metrics</a> &middot; <a href=\"/api/backends\">JSON</a>"
    "</small></p>\n</body></html>\n";

// "12.3 ms" for the stats page; "-" without samples.
std::string format_ms(double us) {
  if (us < 0) return "-";
  const double ms = us / 1000.0;
  char buf[32];
  if (ms < 10) std::snprintf(buf, sizeof buf, "%.2f ms", ms);
  else if (ms < 100) std::snprintf(buf, sizeof buf, "%.1f ms", ms);
  else std::snprintf(buf, sizeof buf, "%.0f ms", ms);
  return buf;
}

void append_listeners(std::string& out, const config::GatewayConfig& cfg,
                      const session::GatewayStats& stats, std::span<const uint32_t> ids) {
  for (size_t li = 0; li < cfg.listeners.size(); ++li) {
    if (li) out += " &middot; ";
    out += "listener <b>";
    append_html(out, cfg.listeners[li].name);
    out += "</b>: ";
    append_i64(out, std::max<int64_t>(0, stats.connections_active(li < ids.size() ? ids[li] : li)));
    out += " connections";
  }
  out += " &middot; affinity store errors: ";
  append_u64(out, stats.affinity_store_errors());
  out += "</p>\n";
}

void append_server_row(std::string& out, size_t bi, const affinity::Server& s,
                       const session::GatewayStats& stats, const LastCheck& last_check) {
  const auto c = response_classes(s);
  const char* state = affinity::to_string(s.admin_state());
  const bool up = s.up();
  out += "<tr class=\"";
  out += !up ? "down" : s.admin_state() == affinity::AdminState::kReady ? "ready" : state;
  out += "\"><td class=\"l\">";
  append_html(out, s.name());
  if (s.backup()) out += " <small>(backup)</small>";
  out += "</td><td class=\"l\">";
  append_html(out, s.endpoint().to_string());
  out += "</td><td class=\"l\">";
  out += state;
  out += "</td><td class=\"l\">";
  out += up ? "up" : s.ejected() ? "down (ejected)" : "down";
  out += "</td><td>";
  append_u64(out, s.weight());
  out += "</td><td>";
  append_u64(out, s.active_requests());
  out += "</td><td>";
  append_u64(out, s.total_requests());
  for (size_t k = 1; k < 5; ++k) {
    out += "</td><td>";
    append_u64(out, c[k]);
  }
  out += "</td><td>";
  append_u64(out, stats.persistent_requests(bi, s.index()));
  const auto lat = stats.server_latency(bi, s.index());
  out += "</td><td>";
  out += format_ms(lat ? lat->quantile_us(0.50) : -1);
  out += "</td><td>";
  out += format_ms(lat ? lat->quantile_us(0.99) : -1);
  out += "</td><td class=\"l\">";
  append_html(out, last_check_text(last_check, s));
  out += "</td></tr>\n";
}

// The gateway's own answers for this backend (502, 503, 504, ...).
void append_gateway_row(std::string& out, size_t bi, const session::GatewayStats& stats) {
  std::array<uint64_t, 5> gw{};
  for (unsigned st = 100; st < 600; ++st) gw[st / 100 - 1] += stats.gateway_responses(bi, st);
  out += "<tr class=\"gw\"><td class=\"l\">gateway</td><td class=\"l\">-</td><td></td><td></td>"
         "<td></td><td></td><td></td>";
  for (size_t k = 1; k < 5; ++k) {
    out += "<td>";
    append_u64(out, gw[k]);
    out += "</td>";
  }
  out += "<td></td><td></td><td></td><td></td></tr>\n</table>\n";
}

// Above the table, so that a backend of tens of servers reads at a glance:
// ")</small></h2>\n<p class=sum>30 servers: 28 up, 2 down; 1 drain, 0 maint"
// (the table head closes the heading's parenthesis first).
void append_summary(std::string& out, const affinity::Backend& b) {
  size_t up = 0, drain = 0, maint = 0;
  for (const affinity::Server* s : b.servers()) {
    up += s->up();
    drain += s->admin_state() == affinity::AdminState::kDrain;
    maint += s->admin_state() == affinity::AdminState::kMaint;
  }
  const size_t n = b.servers().size();
  out += ")</small></h2>\n<p class=\"sum\">";
  append_u64(out, n);
  out += n == 1 ? " server: " : " servers: ";
  append_u64(out, up);
  out += " up, ";
  append_u64(out, n - up);
  out += " down; ";
  append_u64(out, drain);
  out += " drain, ";
  append_u64(out, maint);
  out += " maint</p>";
}

constexpr std::string_view kTcpTableHead =
    "\n<table>\n<tr><th>server</th><th>address</th><th>state</th><th>health</th><th>weight</th>"
    "<th>open</th><th>connections</th><th>last check</th></tr>\n";

// A tcp backend's server: connections instead of requests and statuses.
void append_tcp_server_row(std::string& out, size_t bi, const affinity::Server& s,
                           const session::GatewayStats& stats, const LastCheck& last_check) {
  const bool up = s.up();
  const char* state = affinity::to_string(s.admin_state());
  out += "<tr class=\"";
  out += !up ? "down" : s.admin_state() == affinity::AdminState::kReady ? "ready" : state;
  out += "\"><td class=\"l\">";
  append_html(out, s.name());
  out += "</td><td class=\"l\">";
  append_html(out, s.endpoint().to_string());
  out += "</td><td class=\"l\">";
  out += state;
  out += "</td><td class=\"l\">";
  out += up ? "up" : "down";
  out += "</td><td>";
  append_u64(out, s.weight());
  out += "</td><td>";
  append_u64(out, s.active_requests());
  out += "</td><td>";
  append_u64(out, stats.tcp_connections(bi, s.index()));
  out += "</td><td class=\"l\">";
  append_html(out, last_check_text(last_check, s));
  out += "</td></tr>\n";
}

void append_backend(std::string& out, size_t bi, const affinity::Backend& b,
                    const session::GatewayStats& stats, const LastCheck& last_check) {
  const auto& pc = b.persistence_counters();
  const bool tcp = b.config().mode == config::ProxyMode::kTcp;
  out += "<h2>backend ";
  append_html(out, b.name());
  out += " <small>(";
  if (tcp) out += "tcp, ";
  out += config::to_string(b.config().balance);
  out += "; persistence hit ";
  append_u64(out, pc.total(affinity::PersistenceCounters::kHit));
  out += ", miss ";
  append_u64(out, pc.total(affinity::PersistenceCounters::kMiss));
  out += ", redispatch ";
  append_u64(out, pc.total(affinity::PersistenceCounters::kRedispatch));
  out += "; retries ";
  append_u64(out, stats.retries(bi));
  if (tcp) {
    out += "; bytes in ";
    append_u64(out, stats.tcp_bytes(bi, true));
    out += ", out ";
    append_u64(out, stats.tcp_bytes(bi, false));
    append_summary(out, b);
    out += kTcpTableHead;
    for (const affinity::Server* s : b.servers()) append_tcp_server_row(out, bi, *s, stats, last_check);
    out += "</table>\n";
    return;
  }
  append_summary(out, b);
  out += kTableHead;
  for (const affinity::Server* s : b.servers()) append_server_row(out, bi, *s, stats, last_check);
  append_gateway_row(out, bi, stats);
}

}  // namespace

void append_html(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
}

std::string render_stats_page(const config::GatewayConfig& config,
                              const affinity::BackendSet& backends,
                              const session::GatewayStats& stats, const LastCheck& last_check,
                              std::span<const uint32_t> listener_ids) {
  std::string out;
  out.reserve(8192);
  out += kHead;
  append_listeners(out, config, stats, listener_ids);
  for (const auto& b : backends.backends()) append_backend(out, b->id(), *b, stats, last_check);
  out += kFoot;
  return out;
}

}  // namespace sag::gateway::admin
