// Power of two choices: two candidates are drawn by weighted random
// (effective weight, so slow start applies) among the usable servers, and a
// subclass says which of the two wins. Backups are drawn from only when no
// other server is usable. Per-worker state (the seeded generator): no locks.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>

#include "affinity/balance/balancer.h"
#include "affinity/balance/fast_rng.h"

namespace sag::affinity {

class TwoChoicesBalancer : public Balancer {
 public:
  Server* select(const SelectContext& ctx) final;

 protected:
  // `servers` must outlive the balancer (owned by the Backend). `seed` makes
  // the draws reproducible; give each worker its own.
  TwoChoicesBalancer(std::span<Server* const> servers, std::chrono::milliseconds slow_start,
                     uint64_t seed);
  // `a` or `b` (distinct), with their effective weights; `a` was drawn first.
  virtual Server* prefer(Server* a, uint32_t wa, Server* b, uint32_t wb) const = 0;

 private:
  Server* pick(const SelectContext& ctx, bool backups);

  std::span<Server* const> servers_;
  std::chrono::milliseconds slow_start_;
  FastRng rng_;
};

}  // namespace sag::affinity
