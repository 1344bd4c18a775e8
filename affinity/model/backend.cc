#include "affinity/model/backend.h"

#include "affinity/balance/least_conn_balancer.h"
#include "affinity/balance/least_time_balancer.h"
#include "affinity/balance/maglev_balancer.h"
#include "affinity/balance/random_balancer.h"
#include "affinity/balance/round_robin_balancer.h"

namespace sag::affinity {

namespace {

// The id `name` had in `names`, else the first id free in both `names` and
// `taken`, appended when there is none.
uint32_t id_for(std::string_view name, std::vector<std::string>& names,
                const std::vector<bool>& taken) {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<uint32_t>(i);
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i].empty() && (i >= taken.size() || !taken[i])) {
      names[i] = std::string(name);
      return static_cast<uint32_t>(i);
    }
  names.emplace_back(name);
  return static_cast<uint32_t>(names.size() - 1);
}

}  // namespace

Backend::Backend(const config::BackendConfig& config, const Backend* previous) : config_(config) {
  const auto& cookie = config_.persistence.cookie;
  const std::string secret = cookie && !cookie->secrets.empty() ? cookie->secrets.front() : "";
  counters_ = previous ? previous->counters_ : std::make_shared<PersistenceCounters>();
  // Ids of servers the previous generation had stay theirs; names of ids
  // no server has (removed earlier) are free for new servers.
  if (previous) {
    id_names_.resize(previous->id_count());
    for (const Server* s : previous->servers()) id_names_[s->index()] = s->name();
  }
  std::vector<bool> taken(id_names_.size(), false);
  for (const auto& sc : config_.servers) {
    const Server* before = previous ? previous->find_server(sc.name) : nullptr;
    if (before) taken[before->index()] = true;
  }
  for (const auto& sc : config_.servers) {
    const Server* before = previous ? previous->find_server(sc.name) : nullptr;
    const uint32_t index = before ? before->index() : id_for(sc.name, id_names_, taken);
    if (index < taken.size()) taken[index] = true;
    servers_.push_back(std::make_unique<Server>(index, sc,
                                                StickyCookie::derive_id(config_.name, sc.name, secret),
                                                before ? before->state() : nullptr));
    server_ptrs_.push_back(servers_.back().get());
  }
  by_id_.assign(id_names_.size(), nullptr);
  for (Server* s : server_ptrs_) by_id_[s->index()] = s;
  for (size_t i = 0; i < id_names_.size(); ++i)
    if (!by_id_[i]) id_names_[i].clear();
  if (cookie) cookie_ = std::make_unique<StickyCookie>(config_.name, *cookie, server_ptrs_);
  if (config_.balance == config::BalanceAlgorithm::kSource ||
      config_.balance == config::BalanceAlgorithm::kHash) {
    maglev_primaries_ = MaglevBalancer::build_table(server_ptrs_, false);
    maglev_backups_ = MaglevBalancer::build_table(server_ptrs_, true);
  }
}

void Backend::commit(const Backend* previous) const {
  if (!previous) return;
  for (Server* old : previous->servers()) {
    Server* now = server(old->index());
    if (!now || now->state() != old->state()) {
      old->retire();
    } else if (now->config_weight() != old->config_weight()) {
      now->set_weight(now->config_weight());
    }
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

BackendSet::BackendSet(const config::GatewayConfig& config, const BackendSet* previous) {
  if (previous) {
    id_names_.resize(previous->id_count());
    for (const auto& b : previous->backends()) id_names_[b->id()] = b->name();
  }
  std::vector<bool> taken(id_names_.size(), false);
  for (const auto& bc : config.backends)
    if (const Backend* before = previous ? previous->find(bc.name) : nullptr) taken[before->id()] = true;
  for (const auto& bc : config.backends) {
    const Backend* before = previous ? previous->find(bc.name) : nullptr;
    auto b = std::make_unique<Backend>(bc, before);
    b->id_ = before ? before->id() : id_for(bc.name, id_names_, taken);
    if (b->id_ < taken.size()) taken[b->id_] = true;
    backends_.push_back(std::move(b));
  }
  by_id_.assign(id_names_.size(), nullptr);
  for (const auto& b : backends_) by_id_[b->id()] = b.get();
  for (size_t i = 0; i < id_names_.size(); ++i)
    if (!by_id_[i]) id_names_[i].clear();
}

const Backend* BackendSet::by_id(uint32_t id) const { return id < by_id_.size() ? by_id_[id] : nullptr; }

void BackendSet::commit(const BackendSet* previous) const {
  if (!previous) return;
  for (const auto& old : previous->backends()) {
    const Backend* now = by_id(old->id());
    if (now && now->name() == old->name()) {
      now->commit(old.get());
    } else {
      for (Server* s : old->servers()) s->retire();
    }
  }
}

Backend* BackendSet::find(std::string_view name) const {
  for (const auto& b : backends_)
    if (b->name() == name) return b.get();
  return nullptr;
}

std::vector<ServerNames> BackendSet::server_names() const {
  std::vector<ServerNames> out;
  for (const auto& b : backends_) {
    ServerNames names{b->name(), std::vector<std::string>(b->id_count()),
                      std::vector<ServerNames::Admin>(b->id_count())};
    for (const Server* s : b->servers()) {
      names.servers[s->index()] = s->name();
      names.admin[s->index()] = {s->admin_state(), s->weight(), s->config_weight()};
    }
    out.push_back(std::move(names));
  }
  return out;
}

}  // namespace sag::affinity
