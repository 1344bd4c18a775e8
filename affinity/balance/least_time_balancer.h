// `balance: least_time`: power of two choices over response-head time. Two
// candidates are drawn by weighted random (effective weight); the one with
// the lower score wins, score = (ewma_us + 1) * (active + 1) / weight, where
// ewma_us is Server::response_time_ewma() and active its requests in flight
// (all workers). A server with no sample yet scores 0 (best), so new and
// returning servers get probed; a slow server still gets the picks where it
// is drawn twice, so its average keeps being measured.
#pragma once

#include "affinity/balance/two_choices_balancer.h"

namespace sag::affinity {

class LeastTimeBalancer final : public TwoChoicesBalancer {
 public:
  LeastTimeBalancer(std::span<Server* const> servers, std::chrono::milliseconds slow_start,
                    uint64_t seed)
      : TwoChoicesBalancer(servers, slow_start, seed) {}

 private:
  Server* prefer(Server* a, uint32_t wa, Server* b, uint32_t wb) const override;
};

}  // namespace sag::affinity
