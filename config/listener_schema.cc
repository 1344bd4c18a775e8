// The `listeners` section: name, bind, tls, backend, routes, redirect_https.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include "config/config_schema.h"
#include "config/value_syntax.h"

namespace sag::config {

namespace fs = std::filesystem;

namespace {

// `routes`; true when the listener has some (or a malformed list, already
// reported, so that no "nothing to do" follows).
bool read_routes(SchemaContext& ctx, YamlReader& r, ListenerConfig& l) {
  auto routes = r.list("routes");
  if (!routes) return r.has("routes");
  for (size_t k = 0; k < routes->size(); ++k) {
    YamlReader rr(ctx.log(), (*routes)[k], pos_of((*routes)[k]), "route #" + std::to_string(k + 1) + " of " + r.what());
    if (!rr.ok()) continue;
    RouteConfig route;
    if (rr.read("host", route.host) && !visible_ascii(route.host))
      ctx.error(rr.at("host"), "'host': " + quote(route.host) + " is not a valid host name");
    if (rr.read("path_prefix", route.path_prefix) && !route.path_prefix.empty() &&
        (route.path_prefix[0] != '/' || !visible_ascii(route.path_prefix)))
      ctx.error(rr.at("path_prefix"), "'path_prefix': must start with '/' and hold no spaces, got " +
                                          quote(route.path_prefix));
    if (auto b = rr.required("backend")) {
      route.backend = *b;
      ctx.checks().backend_ref(*b, rr.at("backend"), l.mode);
    }
    l.routes.push_back(std::move(route));
  }
  return !routes->empty();
}

// `certificates` as a directory.
void read_certificates_dir(SchemaContext& ctx, YamlReader& r, const YAML::Node& certs, TlsConfig& t) {
  if (certs.Scalar().empty()) {
    ctx.error(r.at("certificates"), "'certificates' must not be empty");
    return;
  }
  t.certificates_dir = ctx.resolve(certs.Scalar());
  std::error_code ec;
  const auto st = fs::status(t.certificates_dir, ec);
  if (!fs::exists(st))
    ctx.error(r.at("certificates"), "'certificates': directory " + quote_path(t.certificates_dir) + " does not exist");
  else if (!fs::is_directory(st))
    ctx.error(r.at("certificates"), "'certificates': " + quote_path(t.certificates_dir) +
                                        " is not a directory (give a directory, or a list of {cert, key})");
}

// `certificates` as a list of {cert, key}.
void read_certificate_files(SchemaContext& ctx, YamlReader& r, const YAML::Node& certs, const std::string& owner,
                            TlsConfig& t) {
  if (certs.size() == 0)
    ctx.error(r.at("certificates"), "'certificates': the list is empty (give at least one {cert, key})");
  size_t k = 0;
  for (const auto& item : certs) {
    YamlReader cr(ctx.log(), item, pos_of(item), "certificate #" + std::to_string(++k) + " of " + owner);
    if (!cr.ok()) continue;
    TlsCertificateFiles files;
    for (auto [key, out] : {std::pair{"cert", &files.cert}, std::pair{"key", &files.key}}) {
      auto written = cr.required(key);
      if (!written) continue;
      *out = ctx.resolve(*written);
      std::error_code ec;
      const auto st = fs::status(*out, ec);
      if (!fs::exists(st))
        ctx.error(cr.at(key), quote(key) + ": file " + quote_path(*out) + " does not exist");
      else if (!fs::is_regular_file(st))
        ctx.error(cr.at(key), quote(key) + ": " + quote_path(*out) + " is not a regular file");
    }
    t.certificate_files.push_back(std::move(files));
  }
}

// `tcp`: the relay speaks no HTTP, so any protocol name may be offered
// (e.g. "redis"), and none is offered unless listed (SPEC §8).
void read_alpn(SchemaContext& ctx, YamlReader& r, TlsConfig& t, bool tcp) {
  auto alpn = r.list("alpn");
  if (tcp) t.alpn.clear();
  if (!alpn) return;
  t.alpn.clear();
  if (alpn->empty())
    ctx.error(r.at("alpn"), tcp ? "'alpn': give at least one protocol, or leave 'alpn' out to offer none"
                                : "'alpn': give at least one protocol (h2, http/1.1)");
  for (const auto& item : *alpn) {
    const std::string p = item.IsScalar() ? item.Scalar() : std::string();
    const bool token = !p.empty() && p.size() <= 255 &&
                       std::all_of(p.begin(), p.end(), [](char c) { return c > 0x20 && c < 0x7f; });
    if (tcp ? !token : p != "h2" && p != "http/1.1")
      ctx.error(pos_of(item), "'alpn': " + (tcp ? std::string("bad protocol name ") : std::string("unknown protocol ")) +
                                  (item.IsScalar() ? quote(p) : std::string(kind_of(item))) +
                                  (tcp ? " (1 to 255 visible ASCII characters)" : " (use h2, http/1.1)"));
    else if (std::find(t.alpn.begin(), t.alpn.end(), p) != t.alpn.end())
      ctx.error(pos_of(item), "'alpn': " + quote(p) + " is listed twice");
    else
      t.alpn.push_back(p);
  }
}

std::optional<TlsConfig> read_tls(SchemaContext& ctx, YamlReader& parent, bool tcp) {
  YamlReader r = parent.child("tls", "'tls' of " + parent.what());
  TlsConfig t;
  if (!r.ok()) return t;  // still a TLS listener, so no misleading follow-up errors

  const YAML::Node* certs = r.get("certificates");
  if (!certs) {
    r.missing("certificates", " (a directory, or a list of {cert, key})");
  } else if (certs->IsScalar()) {
    read_certificates_dir(ctx, r, *certs, t);
  } else if (certs->IsSequence()) {
    read_certificate_files(ctx, r, *certs, parent.what(), t);
  } else {
    ctx.error(r.at("certificates"),
              "'certificates': expected a directory or a list of {cert, key}, got " + std::string(kind_of(*certs)));
  }
  read_alpn(ctx, r, t, tcp);
  r.read_enum("min_version", t.min_version, {{"TLSv1.2", 0x0303}, {"TLSv1.3", 0x0304}});
  r.read("session_tickets", t.session_tickets);
  return t;
}

}  // namespace

void read_listener(SchemaContext& ctx, const YAML::Node& n, size_t index, GatewayConfig& cfg) {
  YamlReader r(ctx.log(), n, pos_of(n), "listener #" + std::to_string(index + 1));
  if (!r.ok()) return;
  ListenerConfig l;
  if (auto name = r.required("name")) {
    if (!valid_name(*name)) ctx.error(r.at("name"), "'name': " + quote(*name) + " is not a valid name" + kNameHint);
    ctx.checks().listener_name(*name, r.at("name"));
    l.name = *name;
    r.rename("listener " + quote(*name));
  }
  if (auto bind = r.required("bind")) {
    l.bind = *bind;
    if (auto ep = Endpoint::parse(*bind, /*allow_port_zero=*/true)) {
      l.endpoint = *ep;
      ctx.checks().bind(*ep, r.what(), r.at("bind"));
    } else {
      ctx.error(r.at("bind"), "'bind': bad address " + quote(*bind) + " (use e.g. 0.0.0.0:8443 or [::]:8443)");
    }
  }
  r.read_enum("mode", l.mode, {{"http", ProxyMode::kHttp}, {"tcp", ProxyMode::kTcp}});
  const bool tcp = l.mode == ProxyMode::kTcp;
  if (r.has("tls")) l.tls = read_tls(ctx, r, tcp);

  const bool has_backend = r.has("backend");
  if (has_backend) {
    if (auto b = r.required("backend")) {
      l.backend = *b;
      ctx.checks().backend_ref(*b, r.at("backend"), l.mode);
    }
  }
  const bool has_routes = read_routes(ctx, r, l);
  if (tcp && has_routes)
    ctx.error(r.at("routes"), "'routes': a tcp listener has one 'backend' (routes need HTTP)");
  if (tcp && r.has("redirect_https"))
    ctx.error(r.at("redirect_https"), "'redirect_https': a tcp listener relays bytes, it can't redirect");
  else if (tcp && !has_backend)
    ctx.error(r.pos(), r.what() + " needs 'backend' (a tcp backend)");

  if (!tcp && r.has("redirect_https")) {
    uint16_t port = 0;
    if (r.read_uint("redirect_https", port, 1, 65535)) l.redirect_https = port;
    if (r.has("tls"))
      ctx.error(r.at("redirect_https"), "'redirect_https': only a listener without 'tls' can redirect to https");
    else if (has_backend || has_routes)
      ctx.error(r.at("redirect_https"),
                "'redirect_https': a redirecting listener proxies nothing; remove 'backend'/'routes' or 'redirect_https'");
  } else if (!tcp && !has_backend && !has_routes) {
    ctx.error(r.pos(), r.what() + " has nothing to do: give it 'backend', 'routes' or 'redirect_https'");
  }
  cfg.listeners.push_back(std::move(l));
}

}  // namespace sag::config
