// The `backends` section: name, balancing, servers, health checks, passive
// checks, timeouts and the connection pool (persistence has its own file).
#include <yaml-cpp/yaml.h>

#include <utility>

#include "config/config_schema.h"
#include "config/units.h"
#include "config/value_syntax.h"

namespace sag::config {

namespace {

void read_balance(SchemaContext& ctx, YamlReader& r, BackendConfig& b) {
  using B = BalanceAlgorithm;
  r.read_enum("balance", b.balance,
              {{"roundrobin", B::kRoundRobin},
               {"leastconn", B::kLeastConn},
               {"least_time", B::kLeastTime},
               {"source", B::kSource},
               {"hash", B::kHash},
               {"random", B::kRandom}});
  if (r.read("hash_key", b.hash_key)) {
    if (auto key = HashKey::parse(b.hash_key))
      b.hash = std::move(*key);
    else
      ctx.error(r.at("hash_key"),
                "'hash_key': bad key " + quote(b.hash_key) + " (use header:NAME, cookie:NAME, path or source)");
  }
  if (b.balance == B::kHash && !r.has("hash_key"))
    ctx.error(r.at("balance"), "'balance: hash' needs 'hash_key' (header:NAME, cookie:NAME, path or source) " + r.in());
}

void read_server(SchemaContext& ctx, YamlReader& backend, const YAML::Node& item, size_t index, UniqueNames& names,
                 BackendConfig& b) {
  YamlReader sr(ctx.log(), item, pos_of(item), "server #" + std::to_string(index + 1) + " of " + backend.what());
  if (!sr.ok()) return;
  ServerConfig s;
  if (auto name = sr.required("name")) {
    if (!valid_name(*name)) ctx.error(sr.at("name"), "'name': " + quote(*name) + " is not a valid name" + kNameHint);
    names.add(ctx.log(), *name, sr.at("name"), "server", backend.in());
    s.name = *name;
    sr.rename("server " + quote(*name) + " of " + backend.what());
  }
  if (auto address = sr.required("address")) {
    s.address = *address;
    if (auto ep = Endpoint::parse(*address))
      s.endpoint = *ep;
    else
      ctx.error(sr.at("address"), "'address': bad address " + quote(*address) +
                                      " (use e.g. 127.0.0.1:9001 or [::1]:9001, port 1..65535; names other "
                                      "than localhost are not resolved)");
  }
  sr.read_uint("weight", s.weight, 0, kMaxWeight);
  sr.read("backup", s.backup);
  b.servers.push_back(std::move(s));
}

void read_servers(SchemaContext& ctx, YamlReader& r, BackendConfig& b) {
  auto servers = r.list("servers");
  if (!r.has("servers"))
    r.missing("servers", " (a backend needs at least one server)");
  else if (servers && servers->empty())
    ctx.error(r.at("servers"), "'servers': " + r.what() + " has no servers");
  if (!servers) return;
  UniqueNames names;
  for (size_t k = 0; k < servers->size(); ++k) read_server(ctx, r, (*servers)[k], k, names, b);
}

void read_health_check(SchemaContext& ctx, YamlReader& parent, HealthCheckConfig& hc) {
  YamlReader r = parent.child("health_check", "'health_check' of " + parent.what());
  if (!r.ok()) return;
  using H = HealthCheckType;
  r.read_enum("type", hc.type, {{"http", H::kHttp}, {"tcp", H::kTcp}, {"redis", H::kRedis}, {"none", H::kNone}});
  r.read_enum("role", hc.role,
              {{"any", config::RedisRole::kAny}, {"master", config::RedisRole::kMaster},
               {"replica", config::RedisRole::kReplica}});
  ctx.read_secret_line(r, hc.password_file, hc.password);
  if (hc.type != H::kRedis)
    for (const char* key : {"role", "password_file"})
      if (r.has(key)) ctx.error(r.at(key), "'" + std::string(key) + "': only with 'type: redis' " + r.in());
  if (r.read("path", hc.path) && (hc.path.empty() || hc.path[0] != '/' || !visible_ascii(hc.path)))
    ctx.error(r.at("path"), "'path': must start with '/' and hold no spaces, got " + quote(hc.path));
  if (r.read("host", hc.host) && !visible_ascii(hc.host))
    ctx.error(r.at("host"), "'host': " + quote(hc.host) + " is not a valid host name");
  if (auto s = r.scalar("expect_status", "a status like 200 or 200-399")) {
    if (auto range = parse_status_range(*s)) {
      hc.expect_status_min = range->first;
      hc.expect_status_max = range->second;
    } else {
      ctx.error(r.at("expect_status"), "'expect_status': bad status " + quote(*s) +
                                           " (use NNN or NNN-NNN, from 100 to 599, e.g. \"200-399\")");
    }
  }
  r.read_positive("interval", hc.interval);
  r.read_positive("timeout", hc.timeout);
  r.read_uint("rise", hc.rise, 1, 1000);
  r.read_uint("fall", hc.fall, 1, 1000);
}

void read_passive(YamlReader& r, BackendConfig& b) {
  YamlReader p = r.child("passive", "'passive' of " + r.what());
  PassiveConfig pc;
  if (p.ok()) {
    p.read_uint("consecutive_failures", pc.consecutive_failures, 1, 1000000);
    p.read_positive("eject_for", pc.eject_for);
  }
  b.passive = pc;
}

void read_server_timeouts(SchemaContext& ctx, YamlReader& r, BackendConfig& b) {
  YamlReader t = r.child("timeouts", "'timeouts' of " + r.what());
  if (!t.ok()) return;
  const bool tcp = b.mode == ProxyMode::kTcp;
  t.read_positive("connect", b.connect_timeout);
  t.read_positive("server", b.server_timeout);
  t.read_positive("idle", b.idle_timeout);
  if (tcp && t.has("server"))
    ctx.error(t.at("server"), "'server': a tcp backend has no responses to wait for; use 'idle' " + t.in());
  if (!tcp && t.has("idle"))
    ctx.error(t.at("idle"), "'idle': only for a tcp backend (an http backend uses 'server') " + t.in());
}

// What SPEC §2 allows a tcp backend: balance roundrobin, leastconn, source
// or random; persistence `source` alone; no HTTP checks; no pool.
void check_tcp_backend(SchemaContext& ctx, YamlReader& r, const BackendConfig& b) {
  using B = BalanceAlgorithm;
  if (b.balance == B::kLeastTime || b.balance == B::kHash)
    ctx.error(r.at("balance"), "'balance: " + std::string(to_string(b.balance)) +
                                   "' needs HTTP; a tcp backend takes roundrobin, leastconn, source or random");
  if (r.has("hash_key")) ctx.error(r.at("hash_key"), "'hash_key': not for a tcp backend " + r.in());
  if (b.persistence.cookie || b.persistence.learn)
    ctx.error(r.at("persistence"), "'persistence': a tcp backend takes 'source' only (cookies need HTTP) " + r.in());
  if (b.health_check.type == HealthCheckType::kHttp)
    ctx.error(r.at("health_check"), "'health_check': 'type: http' is for http backends; use tcp, redis or none " + r.in());
  if (r.has("pool")) ctx.error(r.at("pool"), "'pool': a tcp backend pools no connections " + r.in());
}

void read_pool(YamlReader& r, PoolConfig& pool) {
  YamlReader p = r.child("pool", "'pool' of " + r.what());
  if (!p.ok()) return;
  p.read_uint("max_idle_per_server", pool.max_idle_per_server, 0, 100000);
  p.read_positive("idle_timeout", pool.idle_timeout);
}

}  // namespace

void read_backend(SchemaContext& ctx, const YAML::Node& n, size_t index, GatewayConfig& cfg) {
  YamlReader r(ctx.log(), n, pos_of(n), "backend #" + std::to_string(index + 1));
  if (!r.ok()) return;
  BackendConfig b;
  if (auto name = r.required("name")) {
    if (!valid_name(*name)) ctx.error(r.at("name"), "'name': " + quote(*name) + " is not a valid name" + kNameHint);
    ctx.checks().backend_name(*name, r.at("name"));
    b.name = *name;
    r.rename("backend " + quote(*name));
  }
  r.read_enum("mode", b.mode, {{"http", ProxyMode::kHttp}, {"tcp", ProxyMode::kTcp}});
  read_balance(ctx, r, b);
  read_servers(ctx, r, b);
  if (r.has("health_check")) read_health_check(ctx, r, b.health_check);
  if (r.has("passive")) read_passive(r, b);
  r.read("slow_start", b.slow_start);
  if (r.has("persistence")) {
    b.persistence = read_persistence(ctx, r);
  } else if (b.mode == ProxyMode::kTcp) {
    b.persistence.cookie.reset();  // absent: none (the cookie default is HTTP's)
  }
  r.read("redispatch", b.redispatch);
  r.read_uint("retries", b.retries, 0, 10);
  if (r.has("timeouts")) read_server_timeouts(ctx, r, b);
  if (r.has("pool")) read_pool(r, b.pool);
  r.read_enum("proxy_protocol", b.proxy_protocol,
              {{"none", ProxyProtocol::kNone}, {"v2", ProxyProtocol::kV2}});
  r.read_enum("on_down", b.on_down, {{"keep", OnDown::kKeep}, {"close", OnDown::kClose}});
  if (b.mode != ProxyMode::kTcp && r.has("on_down"))
    ctx.error(r.at("on_down"), "'on_down': only for a tcp backend " + r.in());
  if (b.mode != ProxyMode::kTcp && r.has("proxy_protocol"))
    ctx.error(r.at("proxy_protocol"), "'proxy_protocol': only for a tcp backend (HTTP servers get "
                                      "X-Forwarded-For) " + r.in());
  if (b.mode == ProxyMode::kTcp) check_tcp_backend(ctx, r, b);
  if (b.mode != ProxyMode::kTcp && b.health_check.type == HealthCheckType::kRedis)
    ctx.error(r.at("health_check"), "'health_check': 'type: redis' is for tcp backends " + r.in());
  cfg.backends.push_back(std::move(b));
}

}  // namespace sag::config
