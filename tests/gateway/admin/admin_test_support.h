// The admin handler fixture shared by the admin tests: a config with two
// backends (app: s1, s2; api: a1), two listeners, and optional basic auth.
#pragma once

#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "affinity/model/server.h"
#include "gateway/admin/admin_server.h"

namespace sag::gateway::admin_test {

inline config::ServerConfig server(const std::string& name, uint16_t port, uint32_t weight = 100) {
  config::ServerConfig s;
  s.name = name;
  s.address = "127.0.0.1:" + std::to_string(port);
  s.endpoint = *config::Endpoint::parse(s.address);
  s.weight = weight;
  return s;
}

inline std::shared_ptr<config::GatewayConfig> make_config(bool auth) {
  auto cfg = std::make_shared<config::GatewayConfig>();
  config::ListenerConfig https;
  https.name = "https";
  https.tls = config::TlsConfig{};
  https.backend = "app";
  config::ListenerConfig http;
  http.name = "http";
  http.backend = "app";
  cfg->listeners = {https, http};
  config::BackendConfig app;
  app.name = "app";
  app.servers = {server("s1", 9001), server("s2", 9002, 50)};
  config::BackendConfig api;
  api.name = "api";
  api.balance = config::BalanceAlgorithm::kLeastConn;
  api.servers = {server("a1", 9101)};
  cfg->backends = {app, api};
  config::AdminConfig admin;
  admin.bind = "127.0.0.1:0";
  admin.endpoint = *config::Endpoint::parse("127.0.0.1:0", true);
  if (auth) {
    admin.user = "admin";
    admin.password = "secret";
  }
  cfg->admin = admin;
  return cfg;
}

struct Fixture {
  explicit Fixture(bool auth = false, AdminHandler::Hooks hooks = {})
      : config(make_config(auth)), backends(*config), stats(*config),
        handler(config, backends, stats, std::move(hooks)) {}
  affinity::Server& srv(std::string_view b, std::string_view s) {
    return *backends.find(b)->find_server(s);
  }
  AdminResponse get(std::string_view target, std::string_view auth = {}) {
    return handler.handle({"GET", target, auth, {}});
  }
  AdminResponse put(std::string_view target, std::string_view body, std::string_view auth = {}) {
    return handler.handle({"PUT", target, auth, body});
  }

  std::shared_ptr<config::GatewayConfig> config;
  affinity::BackendSet backends;
  session::GatewayStats stats;
  AdminHandler handler;
};

inline constexpr std::string_view kGoodAuth = "Basic YWRtaW46c2VjcmV0";  // admin:secret

inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace sag::gateway::admin_test
