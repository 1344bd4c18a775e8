#include "affinity/backend.h"

#include "affinity/round_robin_balancer.h"

namespace sag::affinity {

Backend::Backend(const config::BackendConfig& config) : config_(config) {
  const auto& cookie = config_.persistence.cookie;
  const std::string secret = cookie && !cookie->secrets.empty() ? cookie->secrets.front() : "";
  for (const auto& sc : config_.servers) {
    auto index = static_cast<uint32_t>(servers_.size());
    servers_.push_back(
        std::make_unique<Server>(index, sc, StickyCookie::derive_id(config_.name, sc.name, secret)));
    server_ptrs_.push_back(servers_.back().get());
  }
  if (cookie) cookie_ = std::make_unique<StickyCookie>(config_.name, *cookie, server_ptrs_);
}

Server* Backend::find_server(std::string_view name) const {
  for (Server* s : server_ptrs_)
    if (s->name() == name) return s;
  return nullptr;
}

std::unique_ptr<Balancer> Backend::make_balancer() const {
  // Other algorithms join here as they are built; the loader warns meanwhile.
  return std::make_unique<RoundRobinBalancer>(server_ptrs_);
}

BackendSet::BackendSet(const config::GatewayConfig& config) {
  for (const auto& bc : config.backends) backends_.push_back(std::make_unique<Backend>(bc));
}

Backend* BackendSet::find(std::string_view name) const {
  for (const auto& b : backends_)
    if (b->name() == name) return b.get();
  return nullptr;
}

}  // namespace sag::affinity
