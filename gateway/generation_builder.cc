#include "gateway/generation_builder.h"

#include <algorithm>

#include "session/asio_endpoint.h"
#include "tls/server_tls_context.h"
#include "tls/ticket_keys.h"

namespace sag::gateway {

const std::vector<std::string>& supported_alpn() {
  static const std::vector<std::string> kAlpn = {"h2", "http/1.1"};
  return kAlpn;
}

namespace {

// The listener of `previous` bound where `lc` binds, or null.
const session::ListenerRuntime* same_bind(const session::Generation* previous,
                                          const config::ListenerConfig& lc) {
  if (!previous) return nullptr;
  const auto ep = session::to_asio_endpoint(lc.endpoint);
  for (const auto& l : previous->listeners)
    if (session::to_asio_endpoint(l.config->endpoint) == ep) return &l;
  return nullptr;
}

// Ids: a listener bound where one of `previous` was keeps its id (and its
// socket and port); another takes the lowest id free in both generations.
void assign_ids(std::vector<session::ListenerRuntime>& listeners, const session::Generation* previous) {
  std::vector<uint32_t> used;
  std::vector<bool> kept(listeners.size(), false);
  for (size_t i = 0; i < listeners.size(); ++i) {
    if (const auto* before = same_bind(previous, *listeners[i].config)) {
      listeners[i].id = before->id;
      listeners[i].port = before->port;
      kept[i] = true;
      used.push_back(before->id);
    }
  }
  if (previous)
    for (const auto& l : previous->listeners) used.push_back(l.id);
  for (size_t i = 0; i < listeners.size(); ++i) {
    if (kept[i]) continue;
    uint32_t id = 0;
    while (std::find(used.begin(), used.end(), id) != used.end()) ++id;
    listeners[i].id = id;
    used.push_back(id);
  }
}

}  // namespace

std::shared_ptr<session::Generation> GenerationBuilder::build(
    std::shared_ptr<const config::GatewayConfig> config, const session::Generation* previous,
    std::vector<std::string>& errors) const {
  const size_t errors_before = errors.size();
  auto gen = std::make_shared<session::Generation>();
  gen->number = previous ? previous->number + 1 : 1;
  gen->config = config;
  gen->listeners.resize(config->listeners.size());
  for (size_t i = 0; i < config->listeners.size(); ++i) {
    const auto& lc = config->listeners[i];
    auto& rt = gen->listeners[i];
    rt.config = &lc;
    rt.port = lc.endpoint.port;
    if (lc.tls) {
      std::vector<std::string> tls_errors;
      // A tcp listener offers exactly what it lists (possibly nothing).
      const auto& offerable = lc.mode == config::ProxyMode::kTcp ? lc.tls->alpn : supported_alpn();
      rt.tls = tls::ServerTlsContext::create(*lc.tls, offerable, tls_errors, ticket_keys_);
      for (auto& e : tls_errors) errors.push_back("listener '" + lc.name + "': " + e);
    }
    if (!lc.redirect_https) rt.router = std::make_unique<session::Router>(lc, *config);
  }
  assign_ids(gen->listeners, previous);
  std::string log_error;
  gen->access_log = session::AccessLog::open(config->access_log, log_error);
  if (!gen->access_log) errors.push_back("access_log: " + log_error);
  if (errors.size() != errors_before) return nullptr;
  gen->backends = std::make_shared<affinity::BackendSet>(*config, previous ? previous->backends.get() : nullptr);
  return gen;
}

}  // namespace sag::gateway
