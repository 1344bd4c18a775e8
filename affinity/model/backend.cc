#include "affinity/model/backend.h"

#include "affinity/balance/least_conn_balancer.h"
#include "affinity/balance/least_time_balancer.h"
#include "affinity/balance/maglev_balancer.h"
#include "affinity/balance/random_balancer.h"
#include "affinity/balance/round_robin_balancer.h"

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
  if (config_.balance == config::BalanceAlgorithm::kSource ||
      config_.balance == config::BalanceAlgorithm::kHash) {
    maglev_primaries_ = MaglevBalancer::build_table(server_ptrs_, false);
    maglev_backups_ = MaglevBalancer::build_table(server_ptrs_, true);
  }
}

Server* Backend::find_server(std::string_view name) const {
  for (Server* s : server_ptrs_)
    if (s->name() == name) return s;
  return nullptr;
}

std::unique_ptr<Balancer> Backend::make_balancer(uint64_t seed) const {
  const auto slow_start = config_.slow_start;
  switch (config_.balance) {
    case config::BalanceAlgorithm::kRoundRobin:
      break;
    case config::BalanceAlgorithm::kLeastConn:
      return std::make_unique<LeastConnBalancer>(server_ptrs_, slow_start);
    case config::BalanceAlgorithm::kLeastTime:
      return std::make_unique<LeastTimeBalancer>(server_ptrs_, slow_start, seed);
    case config::BalanceAlgorithm::kRandom:
      return std::make_unique<RandomBalancer>(server_ptrs_, slow_start, seed);
    case config::BalanceAlgorithm::kSource:
    case config::BalanceAlgorithm::kHash:
      return std::make_unique<MaglevBalancer>(server_ptrs_, maglev_primaries_, maglev_backups_,
                                              slow_start);
  }
  return std::make_unique<RoundRobinBalancer>(server_ptrs_, slow_start);
}

BackendSet::BackendSet(const config::GatewayConfig& config) {
  for (const auto& bc : config.backends) backends_.push_back(std::make_unique<Backend>(bc));
}

Backend* BackendSet::find(std::string_view name) const {
  for (const auto& b : backends_)
    if (b->name() == name) return b.get();
  return nullptr;
}

std::vector<ServerNames> BackendSet::server_names() const {
  std::vector<ServerNames> out;
  for (const auto& b : backends_) {
    ServerNames names{b->name(), {}};
    for (const Server* s : b->servers()) names.servers.push_back(s->name());
    out.push_back(std::move(names));
  }
  return out;
}

}  // namespace sag::affinity
