// One server of a backend: identity from the config plus the live state that
// every worker reads (health, admin state, weight) and the counters the admin
// listener reads. All mutable state is atomic; a Server is shared by all
// workers and outlives every request that points at it (owned by Backend).
// What every request writes (active/total requests, responses by status,
// the response-time average) is kept per worker (base::Sharded) and summed
// when read, so workers never write the same cache line.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "affinity/model/admin_state.h"
#include "config/base/worker_shard.h"
#include "config/gateway_config.h"

namespace sag::affinity {

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
  // An operator's change, made through the admin API here or on another
  // replica: sets whichever of `state` and `weight` is given; leaving maint
  // restarts the slow-start ramp at `now`, as coming back up does. Returns
  // what changed, for the log: e.g. " state maint -> ready weight 100 -> 50"
  // (empty when nothing did). Thread-safe as the setters are; two callers
  // at once may interleave field by field.
  std::string apply_admin(std::optional<AdminState> state, std::optional<uint32_t> weight,
                          std::chrono::steady_clock::time_point now);
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
  // A down -> up transition starts the slow-start ramp at `now`. Servers up
  // from the start never ramp (as HAProxy: slow start applies only to a
  // server that was seen down). Single writer per server expected (the
  // health checker / passive ejection); a concurrent pair of calls may at
  // worst restart the ramp at a slightly different time.
  void set_healthy(bool up, std::chrono::steady_clock::time_point now);
  // As above with now = steady_clock::now().
  void set_healthy(bool up) { set_healthy(up, std::chrono::steady_clock::now()); }
  // When the server last came up (the epoch when it was up from the start).
  std::chrono::steady_clock::time_point up_since() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::nanoseconds(up_since_ns_.load(std::memory_order_relaxed)));
  }
  // Restart the ramp explicitly (e.g. the admin API taking it out of maint).
  void set_up_since(std::chrono::steady_clock::time_point t) {
    up_since_ns_.store(t.time_since_epoch().count(), std::memory_order_relaxed);
  }
  // weight() ramped by slow start: from max(1, weight/10) at up_since to the
  // full weight at up_since + slow_start, linearly. Full weight when
  // slow_start is 0, when `now` is the default (epoch: caller has no clock)
  // or when the server was up from the start. 0 when weight() is 0.
  uint32_t effective_weight(std::chrono::steady_clock::time_point now,
                            std::chrono::milliseconds slow_start) const;

  // Response-head time (request sent -> response head received), as an
  // exponentially weighted moving average, alpha = 1/5, kept per worker;
  // the value read is the mean of the workers that have a sample. Lock-free:
  // a relaxed load then store, so two non-worker threads recording at the
  // same instant may lose one sample; harmless for a moving average.
  void record_response_time(std::chrono::microseconds t);
  bool has_response_time() const;
  // 0 when there is no sample yet (has_response_time() tells the two apart).
  std::chrono::microseconds response_time_ewma() const;

  // Passive ejection (docs/configuration.md `passive`): real traffic failures take a
  // server out without waiting for active checks. The forwarding path
  // reports outcomes; the health checker (one per process) ends ejections.
  // record_failure() returns the consecutive failure count including this one.
  uint32_t record_failure() { return consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1; }
  void record_success() {
    if (consecutive_failures_.load(std::memory_order_relaxed) != 0)
      consecutive_failures_.store(0, std::memory_order_relaxed);
  }
  uint32_t consecutive_failures() const { return consecutive_failures_.load(std::memory_order_relaxed); }
  // Takes the server out at `now`; true when this call ejected it (it was in).
  bool eject(std::chrono::steady_clock::time_point now) {
    ejected_at_ns_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    return !ejected_.exchange(true, std::memory_order_relaxed);
  }
  void end_ejection() {
    consecutive_failures_.store(0, std::memory_order_relaxed);
    ejected_.store(false, std::memory_order_relaxed);
  }
  bool ejected() const { return ejected_.load(std::memory_order_relaxed); }
  std::chrono::steady_clock::time_point ejected_at() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::nanoseconds(ejected_at_ns_.load(std::memory_order_relaxed)));
  }
  // Up as far as traffic is concerned: healthy and not ejected.
  bool up() const { return healthy() && !ejected(); }

  // May take sessions that are not pinned yet (docs/behaviour.md#persistence: up, ready, weight > 0).
  bool usable_for_new() const {
    return up() && admin_state() == AdminState::kReady && weight() > 0;
  }
  // May keep serving sessions already pinned to it (up, ready or drain).
  bool usable_for_pinned() const { return up() && admin_state() != AdminState::kMaint; }

  // Responses by exact status (100..599) for metrics; other codes count as 0.
  void count_response(unsigned status) {
    base::bump(traffic_.local().responses[status >= 100 && status < 600 ? status - 100 : 0]);
  }
  uint64_t responses(unsigned status) const;

  // Request accounting; called by the forwarding path on every request, a
  // request finishing on the thread that started it.
  void request_started() {
    Traffic& t = traffic_.local();
    t.active.fetch_add(1, std::memory_order_relaxed);
    base::bump(t.total);
  }
  void request_finished() { traffic_.local().active.fetch_sub(1, std::memory_order_relaxed); }
  // Summed over the workers: leastconn reads it per balancing decision
  // (workers + 1 loads).
  uint64_t active_requests() const;
  uint64_t total_requests() const;

 private:
  const uint32_t index_;
  const std::string name_;
  const config::Endpoint endpoint_;
  const bool backup_;
  const std::string cookie_id_;
  std::atomic<uint32_t> weight_;
  std::atomic<AdminState> admin_{AdminState::kReady};
  std::atomic<bool> healthy_{true};
  std::atomic<int64_t> up_since_ns_{0};  // steady_clock ns; 0 = up from the start
  std::atomic<uint32_t> consecutive_failures_{0};
  std::atomic<bool> ejected_{false};
  std::atomic<int64_t> ejected_at_ns_{0};
  // EWMA in 1/16 us (fixed point, so small times keep precision); 0 = none,
  // any real average is stored as at least 1.
  static constexpr int kEwmaShift = 4;
  // One worker's share of what every request writes.
  struct Traffic {
    std::atomic<int64_t> active{0};  // per worker; the sum is never negative
    std::atomic<uint64_t> total{0};
    std::atomic<uint64_t> rt_ewma{0};
    std::array<std::atomic<uint64_t>, 500> responses{};  // index status - 100
  };
  base::Sharded<Traffic> traffic_;
};

}  // namespace sag::affinity
