// Smooth weighted round robin (as nginx): each pick adds every usable
// server's weight to its running score, takes the highest score and
// subtracts the total. Weights 5:1:1 give a,a,b,a,c,a,a rather than bursts.
#pragma once

#include <chrono>
#include <span>
#include <vector>

#include "affinity/balance/balancer.h"

namespace sag::affinity {

class RoundRobinBalancer final : public Balancer {
 public:
  // `servers` must outlive the balancer (owned by the Backend). Weights are
  // the effective (slow-start) weights at SelectContext::now.
  explicit RoundRobinBalancer(std::span<Server* const> servers,
                              std::chrono::milliseconds slow_start = {});
  Server* select(const SelectContext& ctx) override;

 private:
  Server* pick(const SelectContext& ctx, bool backups);

  std::span<Server* const> servers_;
  std::chrono::milliseconds slow_start_;
  std::vector<int64_t> score_;  // parallel to servers_
};

}  // namespace sag::affinity
