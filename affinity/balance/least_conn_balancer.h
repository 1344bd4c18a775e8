// `balance: leastconn`: the server with the fewest active requests per unit
// of weight (Server::active_requests() counts every worker's requests), i.e.
// a beats b when active_a * weight_b < active_b * weight_a, with effective
// (slow-start) weights. Ties are broken by smooth weighted round robin among
// the tied servers (as nginx's least_conn): with equal weights that is plain
// round robin, and an idle backend still sees its traffic split by weight.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "affinity/balance/balancer.h"

namespace sag::affinity {

class LeastConnBalancer final : public Balancer {
 public:
  // `servers` must outlive the balancer (owned by the Backend).
  LeastConnBalancer(std::span<Server* const> servers, std::chrono::milliseconds slow_start);
  Server* select(const SelectContext& ctx) override;

 private:
  Server* pick(const SelectContext& ctx, bool backups);

  std::span<Server* const> servers_;
  std::chrono::milliseconds slow_start_;
  std::vector<int64_t> score_;  // tie-break round robin state, parallel to servers_
};

}  // namespace sag::affinity
