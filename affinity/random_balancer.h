// `balance: random`: power of two choices. Two candidates are drawn by
// weighted random (effective weight, so slow start applies); the one with
// fewer active requests per unit of weight wins, the first drawn on a tie.
// With no load the picks follow the weights exactly in expectation.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>

#include "affinity/balancer.h"
#include "affinity/fast_rng.h"

namespace sag::affinity {

class RandomBalancer final : public Balancer {
 public:
  // `servers` must outlive the balancer (owned by the Backend). `seed` makes
  // the choices reproducible; give each worker its own.
  RandomBalancer(std::span<Server* const> servers, std::chrono::milliseconds slow_start,
                 uint64_t seed);
  Server* select(const SelectContext& ctx) override;

 private:
  Server* pick(const SelectContext& ctx, bool backups);

  std::span<Server* const> servers_;
  std::chrono::milliseconds slow_start_;
  FastRng rng_;
};

}  // namespace sag::affinity
