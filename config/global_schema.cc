// The top-level sections that configure the process as a whole: workers,
// pid_file, forwarded, limits, timeouts, admin and access_log.
#include <yaml-cpp/yaml.h>

#include "config/config_schema.h"
#include "config/units.h"

namespace sag::config {

void read_workers(SchemaContext& ctx, YamlReader& r, GatewayConfig& cfg) {
  auto s = r.scalar("workers", "auto or a number from 1 to 1024");
  if (!s) return;
  if (*s == "auto") {
    cfg.workers = 0;
    return;
  }
  auto v = parse_digits(*s);
  if (!v || *v < 1 || *v > 1024) {
    ctx.error(r.at("workers"), "'workers': expected auto or a number from 1 to 1024, got " + quote(*s));
    return;
  }
  cfg.workers = static_cast<uint32_t>(*v);
}

void read_pid_file(SchemaContext& ctx, YamlReader& r, GatewayConfig& cfg) {
  ctx.read_output_path(r, "pid_file", cfg.pid_file);
}

void read_forwarded(SchemaContext& ctx, YamlReader& root, ForwardedConfig& f) {
  if (!root.has("forwarded")) return;
  YamlReader r = root.child("forwarded", "'forwarded'");
  if (!r.ok()) return;
  if (auto items = r.list("trusted_proxies")) {
    for (const auto& item : *items) {
      std::optional<Cidr> cidr;
      if (item.IsScalar()) cidr = Cidr::parse(item.Scalar());
      if (cidr)
        f.trusted_proxies.push_back(*cidr);
      else
        ctx.error(pos_of(item), "'trusted_proxies': bad address or CIDR " +
                                    (item.IsScalar() ? quote(item.Scalar()) : std::string(kind_of(item))) +
                                    " (use e.g. 10.0.0.0/8, 192.0.2.7 or fd00::/8)");
    }
  }
  r.read("x_forwarded_for", f.x_forwarded_for);
  r.read("x_forwarded_proto", f.x_forwarded_proto);
  r.read("x_forwarded_host", f.x_forwarded_host);
  r.read("forwarded", f.forwarded);
}

void read_limits(SchemaContext&, YamlReader& root, LimitsConfig& l) {
  if (!root.has("limits")) return;
  YamlReader r = root.child("limits", "'limits'");
  if (!r.ok()) return;
  r.read_uint("max_connections", l.max_connections, 1, 100000000);
  r.read_size("max_header_bytes", l.max_header_bytes, 1);
  r.read_uint("max_headers", l.max_headers, 1, 100000);
  r.read_size("max_request_line", l.max_request_line, 1);
  r.read_size("max_body", l.max_body);
  r.read_uint("h2_max_concurrent_streams", l.h2_max_concurrent_streams, 1, 2147483647);
}

void read_timeouts(SchemaContext&, YamlReader& root, TimeoutsConfig& t) {
  if (!root.has("timeouts")) return;
  YamlReader r = root.child("timeouts", "'timeouts'");
  if (!r.ok()) return;
  r.read_positive("client", t.client);
  r.read_positive("http_request", t.http_request);
  r.read_positive("keepalive", t.keepalive);
  r.read("shutdown", t.shutdown);  // 0 = stop at once
}

void read_admin(SchemaContext& ctx, YamlReader& root, std::optional<AdminConfig>& admin) {
  if (!root.has("admin")) return;
  YamlReader r = root.child("admin", "'admin'");
  if (!r.ok()) return;
  AdminConfig a;
  if (auto bind = r.required("bind")) {
    a.bind = *bind;
    if (auto ep = Endpoint::parse(*bind, /*allow_port_zero=*/true)) {
      a.endpoint = *ep;
      ctx.checks().bind(*ep, "the admin listener", r.at("bind"));
    } else {
      ctx.error(r.at("bind"), "'bind': bad address " + quote(*bind) + " (use e.g. 127.0.0.1:9901)");
    }
  }
  if (r.has("auth")) {
    YamlReader ar = r.child("auth", "'admin.auth'");
    if (ar.ok()) {
      if (ar.read("user", a.user) && a.user.find(':') != std::string::npos)
        ctx.error(ar.at("user"), "'user': must not contain ':' (basic auth splits on it)");
      ctx.read_secret_line(ar, a.password_file, a.password);
      if (!a.password_file.empty() && a.user.empty())
        ctx.error(ar.has("user") ? ar.at("user") : ar.pos(),
                  "'user' is required " + ar.in() + " when 'password_file' is set");
    }
  }
  admin = std::move(a);
}

void read_access_log(SchemaContext&, YamlReader& root, AccessLogConfig& a) {
  if (!root.has("access_log")) return;
  YamlReader r = root.child("access_log", "'access_log'");
  if (!r.ok()) return;
  r.read("path", a.path);
  r.read_enum("format", a.format, {{"text", LogFormat::kText}, {"json", LogFormat::kJson}});
}

}  // namespace sag::config
