// AdminHandler: which body answers which request. The transport
// (AdminServer) is admin_listener.cc.
#include "gateway/admin/admin_server.h"

#include "config/base/hex.h"
#include "gateway/admin/prometheus.h"
#include "gateway/admin/stats_page.h"

namespace sag::gateway {
namespace {

AdminResponse method_not_allowed(std::string allow) {
  AdminResponse r = admin::error_response(405, "method not allowed");
  r.allow = std::move(allow);
  return r;
}

AdminResponse ok(const char* type, std::string body) {
  AdminResponse r;
  r.content_type = type;
  r.body = std::move(body);
  return r;
}

// %XX in a path segment; nullopt when malformed.
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = base::hex_value(s[i + 1]), lo = base::hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string_view admin_user(const config::GatewayConfig& c) {
  return c.admin ? std::string_view(c.admin->user) : std::string_view();
}
std::string_view admin_password(const config::GatewayConfig& c) {
  return c.admin ? std::string_view(c.admin->password) : std::string_view();
}

}  // namespace

AdminHandler::View::View(std::shared_ptr<const config::GatewayConfig> c, affinity::BackendSet& b,
                         const session::GatewayStats& stats, const Hooks& hooks,
                         std::vector<uint32_t> ids, std::shared_ptr<const void> k)
    : config(std::move(c)),
      backends(b),
      auth(admin_user(*config), admin_password(*config)),
      api(b, stats, hooks.last_check, hooks.on_change),
      listener_ids(std::move(ids)),
      keep(std::move(k)) {}

AdminHandler::AdminHandler(std::shared_ptr<const config::GatewayConfig> config,
                           affinity::BackendSet& backends, const session::GatewayStats& stats,
                           Hooks hooks)
    : stats_(stats),
      hooks_(std::move(hooks)),
      view_(std::make_shared<const View>(std::move(config), backends, stats_, hooks_,
                                         std::vector<uint32_t>{}, nullptr)) {}

void AdminHandler::update(std::shared_ptr<const config::GatewayConfig> config,
                          affinity::BackendSet& backends, std::vector<uint32_t> listener_ids,
                          std::shared_ptr<const void> keep) {
  auto next = std::make_shared<const View>(std::move(config), backends, stats_, hooks_,
                                           std::move(listener_ids), std::move(keep));
  std::lock_guard lock(view_mu_);
  view_.swap(next);
  // The previous view goes with `next`, after the lock is released.
}

std::shared_ptr<const AdminHandler::View> AdminHandler::view() const {
  std::lock_guard lock(view_mu_);
  return view_;
}

std::string AdminHandler::metrics() const {
  const auto v = view();
  return admin::prometheus_metrics(*v->config, v->backends, stats_, v->listener_ids);
}

std::string AdminHandler::backends_json() const { return view()->api.backends_json(); }

std::string AdminHandler::stats_page() const {
  const auto v = view();
  return admin::render_stats_page(*v->config, v->backends, stats_, hooks_.last_check, v->listener_ids);
}

AdminResponse AdminHandler::handle(const AdminRequest& req) const {
  const auto v = view();
  AdminResponse r = route(*v, req);
  r.head = req.method == "HEAD";
  return r;
}

AdminResponse AdminHandler::route(const View& v, const AdminRequest& req) const {
  const std::string_view path = req.target.substr(0, req.target.find_first_of("?#"));
  const bool get = req.method == "GET" || req.method == "HEAD";

  if (path == "/healthz") {
    if (!get) return method_not_allowed("GET, HEAD");
    if (draining_.load(std::memory_order_relaxed)) {
      AdminResponse r = ok(admin::kTextType, "draining\n");
      r.status = 503;
      return r;
    }
    return ok(admin::kTextType, "ok\n");
  }
  if (!v.auth.authorized(req.authorization)) {
    AdminResponse r = admin::error_response(401, "authentication required");
    r.challenge = true;
    return r;
  }
  if (path == "/") {
    if (!get) return method_not_allowed("GET, HEAD");
    return ok(admin::kHtmlType, stats_page());
  }
  if (path == "/metrics") {
    if (!get) return method_not_allowed("GET, HEAD");
    return ok(admin::kMetricsType, metrics());
  }
  if (path == "/api/backends") {
    if (!get) return method_not_allowed("GET, HEAD");
    return ok(admin::kJsonType, backends_json());
  }
  if (auto r = route_server(v, path, req)) return std::move(*r);
  return admin::error_response(404, "not found");
}

std::optional<AdminResponse> AdminHandler::route_server(const View& v, std::string_view path,
                                                        const AdminRequest& req) const {
  static constexpr std::string_view kPrefix = "/api/backends/";
  static constexpr std::string_view kServers = "/servers/";
  if (!path.starts_with(kPrefix)) return std::nullopt;
  const std::string_view rest = path.substr(kPrefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || !rest.substr(slash).starts_with(kServers))
    return std::nullopt;
  const std::string_view b_raw = rest.substr(0, slash);
  const std::string_view s_raw = rest.substr(slash + kServers.size());
  const auto b = percent_decode(b_raw);
  const auto s = percent_decode(s_raw);
  if (!b || !s || b->empty() || s->empty() || s_raw.find('/') != std::string_view::npos)
    return std::nullopt;
  if (req.method == "PUT") return v.api.put_server(*b, *s, req.body);
  if (req.method != "GET" && req.method != "HEAD") return method_not_allowed("GET, HEAD, PUT");
  return v.api.get_server(*b, *s);
}

}  // namespace sag::gateway
