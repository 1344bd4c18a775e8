// `balance: random`: power of two choices. Two candidates are drawn by
// weighted random (effective weight, so slow start applies); the one with
// fewer active requests per unit of weight wins, the first drawn on a tie.
// With no load the picks follow the weights exactly in expectation.
#pragma once

#include "affinity/balance/two_choices_balancer.h"

namespace sag::affinity {

class RandomBalancer final : public TwoChoicesBalancer {
 public:
  RandomBalancer(std::span<Server* const> servers, std::chrono::milliseconds slow_start,
                 uint64_t seed)
      : TwoChoicesBalancer(servers, slow_start, seed) {}

 private:
  Server* prefer(Server* a, uint32_t wa, Server* b, uint32_t wb) const override;
};

}  // namespace sag::affinity
