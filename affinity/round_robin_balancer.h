// Smooth weighted round robin (as nginx): each pick adds every usable
// server's weight to its running score, takes the highest score and
// subtracts the total. Weights 5:1:1 give a,a,b,a,c,a,a rather than bursts.
#pragma once

#include <span>
#include <vector>

#include "affinity/balancer.h"

namespace sag::affinity {

class RoundRobinBalancer final : public Balancer {
 public:
  // `servers` must outlive the balancer (owned by the Backend).
  explicit RoundRobinBalancer(std::span<Server* const> servers);
  Server* select(const SelectContext& ctx) override;

 private:
  Server* pick(const SelectContext& ctx, bool backups);

  std::span<Server* const> servers_;
  std::vector<int64_t> score_;  // parallel to servers_
};

}  // namespace sag::affinity
