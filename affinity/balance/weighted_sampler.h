// What the balancers share: which servers one pick may consider, and drawing
// candidates by weighted random (the power-of-two-choices balancers).
//
// A pick runs over one tier: first the non-backup servers, and only when none
// of them is eligible, the backups (docs/configuration.md `backup: true`).
#pragma once

#include <chrono>
#include <span>

#include "affinity/balance/balancer.h"
#include "affinity/balance/fast_rng.h"
#include "affinity/model/server.h"

namespace sag::affinity {

class WeightedSampler {
 public:
  // In the tier, usable for new sessions and not excluded.
  static bool eligible(const Server& s, const SelectContext& ctx, bool backups) {
    return s.backup() == backups && s.usable_for_new() && !is_excluded(ctx.excluded, s.index());
  }

  // Draws two candidates of the tier, independently (with replacement), each
  // with probability proportional to its effective (slow-start) weight. Two
  // passes over the servers, two random numbers, no allocation. False when
  // no server of the tier is eligible.
  static bool draw_two(std::span<Server* const> servers, const SelectContext& ctx, bool backups,
                       std::chrono::milliseconds slow_start, FastRng& rng, Server*& first,
                       Server*& second);
};

// Of two drawn candidates with effective weights wa and wb: `b` when it
// carries strictly fewer active requests per unit of weight, else `a` (the
// first drawn wins ties). Exact: compares cross products, no division.
Server* fewer_active_per_weight(Server* a, uint32_t wa, Server* b, uint32_t wb);

}  // namespace sag::affinity
