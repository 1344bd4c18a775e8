// A backend: its servers and the selection data built once from the config
// (cookie ids, the sticky cookie). Shared read-only by all workers; the
// per-worker mutable parts (balancer state) come from make_balancer().
#pragma once

#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "affinity/balance/balancer.h"
#include "affinity/model/persistence_counters.h"
#include "affinity/balance/maglev_table.h"
#include "affinity/model/server.h"
#include "affinity/cookie/sticky_cookie.h"
#include "config/gateway_config.h"

namespace sag::affinity {

class Backend {
 public:
  explicit Backend(const config::BackendConfig& config);
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  const std::string& name() const { return config_.name; }
  const config::BackendConfig& config() const { return config_; }
  std::span<Server* const> servers() const { return server_ptrs_; }
  Server* find_server(std::string_view name) const;
  // nullptr when the backend has no cookie persistence.
  const StickyCookie* cookie() const { return cookie_.get(); }

  // Outcomes of this backend's persistence decisions; mutable through a
  // const Backend because counting is not a change of the backend.
  PersistenceCounters& persistence_counters() const { return counters_; }

  // A fresh balancer for one worker (balancers keep unsynchronised state),
  // of the config's `balance` algorithm, with its `slow_start`. `seed` feeds
  // the randomised ones (random, least_time): give each worker its own (e.g.
  // its index) so workers don't draw in lockstep. The hashing ones (source,
  // hash) share one Maglev table per backend, built in the constructor.
  std::unique_ptr<Balancer> make_balancer(uint64_t seed = 0) const;

 private:
  const config::BackendConfig config_;
  std::vector<std::unique_ptr<Server>> servers_;
  std::vector<Server*> server_ptrs_;
  std::unique_ptr<StickyCookie> cookie_;
  mutable PersistenceCounters counters_;
  // balance: source | hash only; primaries' and backups' tables.
  std::shared_ptr<const MaglevTable> maglev_primaries_;
  std::shared_ptr<const MaglevTable> maglev_backups_;
};

// One backend's server names by ServerId: how servers are named beyond
// one process and one config (Redis, state files, upgrades), where a
// ServerId, a position, means nothing.
struct ServerNames {
  std::string backend;
  std::vector<std::string> servers;
};

// Every backend of one config.
class BackendSet {
 public:
  explicit BackendSet(const config::GatewayConfig& config);
  Backend* find(std::string_view name) const;
  std::span<const std::unique_ptr<Backend>> backends() const { return backends_; }
  std::vector<ServerNames> server_names() const;

 private:
  std::vector<std::unique_ptr<Backend>> backends_;
};

}  // namespace sag::affinity
