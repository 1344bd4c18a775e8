// One server of a backend: identity from the config plus the live state that
// every worker reads (health, admin state, weight) and the counters the admin
// listener reads. All mutable state is atomic; a Server is shared by all
// workers and outlives every request that points at it (owned by Backend).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "config/gateway_config.h"

namespace sag::affinity {

enum class AdminState : uint8_t { kReady, kDrain, kMaint };

class Server {
 public:
  Server(uint32_t index, const config::ServerConfig& config, std::string cookie_id);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint32_t index() const { return index_; }  // position in Backend::servers()
  const std::string& name() const { return name_; }
  const config::Endpoint& endpoint() const { return endpoint_; }
  bool backup() const { return backup_; }
  // The opaque id the sticky cookie carries; stable across replicas.
  const std::string& cookie_id() const { return cookie_id_; }

  uint32_t weight() const { return weight_.load(std::memory_order_relaxed); }
  void set_weight(uint32_t w) { weight_.store(w, std::memory_order_relaxed); }
  AdminState admin_state() const { return admin_.load(std::memory_order_relaxed); }
  void set_admin_state(AdminState s) { admin_.store(s, std::memory_order_relaxed); }
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
  void set_healthy(bool up) { healthy_.store(up, std::memory_order_relaxed); }

  // May take sessions that are not pinned yet (SPEC §4: up, ready, weight > 0).
  bool usable_for_new() const {
    return healthy() && admin_state() == AdminState::kReady && weight() > 0;
  }
  // May keep serving sessions already pinned to it (up, ready or drain).
  bool usable_for_pinned() const { return healthy() && admin_state() != AdminState::kMaint; }

  // Request accounting; called by the forwarding path on every request.
  void request_started() {
    active_.fetch_add(1, std::memory_order_relaxed);
    total_.fetch_add(1, std::memory_order_relaxed);
  }
  void request_finished() { active_.fetch_sub(1, std::memory_order_relaxed); }
  uint64_t active_requests() const { return active_.load(std::memory_order_relaxed); }
  uint64_t total_requests() const { return total_.load(std::memory_order_relaxed); }

 private:
  const uint32_t index_;
  const std::string name_;
  const config::Endpoint endpoint_;
  const bool backup_;
  const std::string cookie_id_;
  std::atomic<uint32_t> weight_;
  std::atomic<AdminState> admin_{AdminState::kReady};
  std::atomic<bool> healthy_{true};
  // Written by every worker on every request: keep them off the line that
  // holds the read-mostly state above.
  alignas(64) std::atomic<uint64_t> active_{0};
  std::atomic<uint64_t> total_{0};
};

}  // namespace sag::affinity
