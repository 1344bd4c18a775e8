// One server of a backend: identity from the config plus the live state that
// every worker reads (health, admin state, weight) and the counters the admin
// listener reads. All mutable state is atomic; a Server is shared by all
// workers and outlives every request that points at it (owned by Backend).
//
// Across config generations (SIGHUP reload, docs/behaviour.md#reload) a
// server is the same server when its backend and server names are: the new
// generation's Server keeps the old one's index() and shares its State, so
// health, admin state, slow-start ramp, ejection and counters carry over,
// and requests still in flight on the old generation write the same
// counters.
// What every request writes (active/total requests, responses by status,
// the response-time average) is kept per worker (base::Sharded) and summed
// when read, so workers never write the same cache line.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "affinity/model/admin_state.h"
#include "config/base/worker_shard.h"
#include "config/gateway_config.h"

namespace sag::affinity {

class Server {
 public:
  // The live part, shared by the Server objects of one server in successive
  // generations.
  struct State;
  // `index`: the server's id in its backend, stable across generations
  // (Backend assigns it by name). `carried`: the state of the same server in
  // the previous generation; null for a new server.
  Server(uint32_t index, const config::ServerConfig& config, std::string cookie_id,
         std::shared_ptr<State> carried = nullptr);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The server's id in its backend (ServerId: store entries, pools, stats),
  // stable across reloads; not its position in Backend::servers().
  uint32_t index() const { return index_; }
  const std::shared_ptr<State>& state() const { return state_; }
  // The weight the config gave (the admin API may have set another).
  uint32_t config_weight() const { return config_weight_; }
  // A reload removed the server: it takes no request from any generation
  // (its pinned sessions are redispatched). Final.
  void retire() { s_.retired.store(true, std::memory_order_relaxed); }
  bool retired() const { return s_.retired.load(std::memory_order_relaxed); }
  const std::string& name() const { return name_; }
  const config::Endpoint& endpoint() const { return endpoint_; }
  bool backup() const { return backup_; }
  // The opaque id the sticky cookie carries; stable across replicas.
  const std::string& cookie_id() const { return cookie_id_; }

  uint32_t weight() const { return s_.weight.load(std::memory_order_relaxed); }
  void set_weight(uint32_t w) { s_.weight.store(w, std::memory_order_relaxed); }
  AdminState admin_state() const { return s_.admin.load(std::memory_order_relaxed); }
  void set_admin_state(AdminState s) { s_.admin.store(s, std::memory_order_relaxed); }
  // An operator's change, made through the admin API here or on another
  // replica: sets whichever of `state` and `weight` is given; leaving maint
  // restarts the slow-start ramp at `now`, as coming back up does. Returns
  // what changed, for the log: e.g. " state maint -> ready weight 100 -> 50"
  // (empty when nothing did). Thread-safe as the setters are; two callers
  // at once may interleave field by field.
  std::string apply_admin(std::optional<AdminState> state, std::optional<uint32_t> weight,
                          std::chrono::steady_clock::time_point now);
  bool healthy() const { return s_.healthy.load(std::memory_order_relaxed); }
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
        std::chrono::nanoseconds(s_.up_since_ns.load(std::memory_order_relaxed)));
  }
  // Restart the ramp explicitly (e.g. the admin API taking it out of maint).
  void set_up_since(std::chrono::steady_clock::time_point t) {
    s_.up_since_ns.store(t.time_since_epoch().count(), std::memory_order_relaxed);
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
  uint32_t record_failure() { return s_.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1; }
  void record_success() {
    if (s_.consecutive_failures.load(std::memory_order_relaxed) != 0)
      s_.consecutive_failures.store(0, std::memory_order_relaxed);
  }
  uint32_t consecutive_failures() const { return s_.consecutive_failures.load(std::memory_order_relaxed); }
  // Takes the server out at `now`; true when this call ejected it (it was in).
  bool eject(std::chrono::steady_clock::time_point now) {
    s_.ejected_at_ns.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    return !s_.ejected.exchange(true, std::memory_order_relaxed);
  }
  void end_ejection() {
    s_.consecutive_failures.store(0, std::memory_order_relaxed);
    s_.ejected.store(false, std::memory_order_relaxed);
  }
  bool ejected() const { return s_.ejected.load(std::memory_order_relaxed); }
  std::chrono::steady_clock::time_point ejected_at() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::nanoseconds(s_.ejected_at_ns.load(std::memory_order_relaxed)));
  }
  // Up as far as traffic is concerned: healthy and not ejected.
  bool up() const { return healthy() && !ejected() && !retired(); }

  // May take sessions that are not pinned yet (docs/behaviour.md#persistence: up, ready, weight > 0).
  bool usable_for_new() const {
    return up() && admin_state() == AdminState::kReady && weight() > 0;
  }
  // May keep serving sessions already pinned to it (up, ready or drain).
  bool usable_for_pinned() const { return up() && admin_state() != AdminState::kMaint; }

  // Responses by exact status (100..599) for metrics; other codes count as 0.
  void count_response(unsigned status) {
    base::bump(s_.traffic.local().responses[status >= 100 && status < 600 ? status - 100 : 0]);
  }
  uint64_t responses(unsigned status) const;

  // Request accounting; called by the forwarding path on every request, a
  // request finishing on the thread that started it.
  void request_started() {
    Traffic& t = s_.traffic.local();
    t.active.fetch_add(1, std::memory_order_relaxed);
    base::bump(t.total);
  }
  void request_finished() { s_.traffic.local().active.fetch_sub(1, std::memory_order_relaxed); }
  // Summed over the workers: leastconn reads it per balancing decision
  // (workers + 1 loads).
  uint64_t active_requests() const;
  uint64_t total_requests() const;

 public:
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
  struct State {
    explicit State(uint32_t w) : weight(w) {}
    std::atomic<uint32_t> weight;
    std::atomic<AdminState> admin{AdminState::kReady};
    std::atomic<bool> healthy{true};
    std::atomic<int64_t> up_since_ns{0};  // steady_clock ns; 0 = up from the start
    std::atomic<uint32_t> consecutive_failures{0};
    std::atomic<bool> ejected{false};
    std::atomic<int64_t> ejected_at_ns{0};
    std::atomic<bool> retired{false};
    base::Sharded<Traffic> traffic;
  };

 private:
  const uint32_t index_;
  const std::string name_;
  const config::Endpoint endpoint_;
  const bool backup_;
  const std::string cookie_id_;
  const uint32_t config_weight_;
  const std::shared_ptr<State> state_;
  State& s_;  // *state_
};

}  // namespace sag::affinity
