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
  // `previous`: the backend of the same name in the generation this one
  // replaces (SIGHUP reload), or null. Servers are matched by name: a kept
  // server keeps its id and shares its live state (Server::State); a new
  // one takes an id no server of the previous generation had, so an id
  // (ServerId in store entries, pool and stats slots) never moves to another
  // server while a server still holds it. Nothing of `previous` changes
  // until commit().
  explicit Backend(const config::BackendConfig& config, const Backend* previous = nullptr);
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  const std::string& name() const { return config_.name; }
  const config::BackendConfig& config() const { return config_; }
  // The servers in config order.
  std::span<Server* const> servers() const { return server_ptrs_; }
  Server* find_server(std::string_view name) const;
  // By id (Server::index()); null for an id no server of this generation
  // has (a server a reload removed, or garbage from a store).
  Server* server(uint32_t id) const { return id < by_id_.size() ? by_id_[id] : nullptr; }
  // Ids are below this.
  size_t id_count() const { return by_id_.size(); }
  // Stable across generations, as server ids are (stats slots).
  uint32_t id() const { return id_; }

  // The swap to this generation (on one thread, once it is valid as a
  // whole): servers of `previous` that this one lacks are retired (no
  // request goes to them any more, their pinned sessions move), and a
  // kept server whose configured weight changed takes the new weight (an
  // unchanged one keeps what the admin API may have set).
  void commit(const Backend* previous) const;
  // nullptr when the backend has no cookie persistence.
  const StickyCookie* cookie() const { return cookie_.get(); }

  // Outcomes of this backend's persistence decisions; mutable through a
  // const Backend because counting is not a change of the backend.
  PersistenceCounters& persistence_counters() const { return *counters_; }

  // A fresh balancer for one worker (balancers keep unsynchronised state),
  // of the config's `balance` algorithm, with its `slow_start`. `seed` feeds
  // the randomised ones (random, least_time): give each worker its own (e.g.
  // its index) so workers don't draw in lockstep. The hashing ones (source,
  // hash) share one Maglev table per backend, built in the constructor.
  std::unique_ptr<Balancer> make_balancer(uint64_t seed = 0) const;

 private:
  const config::BackendConfig config_;
  uint32_t id_ = 0;
  std::vector<std::unique_ptr<Server>> servers_;
  std::vector<Server*> server_ptrs_;
  std::vector<Server*> by_id_;
  // Names by id; empty for an id no server has (free for a new server from
  // the next reload on: store entries still naming it then reach the new
  // server, which is as good a place as any for a removed server's session).
  std::vector<std::string> id_names_;
  friend class BackendSet;
  std::unique_ptr<StickyCookie> cookie_;
  std::shared_ptr<PersistenceCounters> counters_;
  // balance: source | hash only; primaries' and backups' tables.
  std::shared_ptr<const MaglevTable> maglev_primaries_;
  std::shared_ptr<const MaglevTable> maglev_backups_;
};

// One backend's server names by ServerId: how servers are named beyond
// one process (Redis, state files, upgrades), where a ServerId means
// nothing. An id no server has now has an empty name.
struct ServerNames {
  // What an operator set through the admin API, by ServerId as `servers`
  // (state files and upgrades carry it; empty: not known).
  struct Admin {
    AdminState state = AdminState::kReady;
    uint32_t weight = 0;         // the server's weight
    uint32_t config_weight = 0;  // the weight the config gave it
  };

  ServerNames() = default;
  ServerNames(std::string b, std::vector<std::string> s, std::vector<Admin> a = {})
      : backend(std::move(b)), servers(std::move(s)), admin(std::move(a)) {}

  std::string backend;
  std::vector<std::string> servers;
  std::vector<Admin> admin;
};

// Every backend of one config.
class BackendSet {
 public:
  // `previous`: the set this one replaces on a reload (see Backend); backends
  // are matched by name and keep their id().
  explicit BackendSet(const config::GatewayConfig& config, const BackendSet* previous = nullptr);
  Backend* find(std::string_view name) const;
  // In config order.
  std::span<const std::unique_ptr<Backend>> backends() const { return backends_; }
  // By Backend::id(); null for an id this set lacks.
  const Backend* by_id(uint32_t id) const;
  size_t id_count() const { return id_names_.size(); }
  // Every backend id's names (empty ones for removed backends).
  std::vector<ServerNames> server_names() const;
  // Backend::commit for every backend; servers of a backend that is gone
  // are retired.
  void commit(const BackendSet* previous) const;

 private:
  std::vector<std::unique_ptr<Backend>> backends_;
  std::vector<const Backend*> by_id_;
  std::vector<std::string> id_names_;
};

}  // namespace sag::affinity
