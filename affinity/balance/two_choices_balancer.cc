#include "affinity/balance/two_choices_balancer.h"

#include "affinity/model/server.h"
#include "affinity/balance/weighted_sampler.h"

namespace sag::affinity {

TwoChoicesBalancer::TwoChoicesBalancer(std::span<Server* const> servers,
                                       std::chrono::milliseconds slow_start, uint64_t seed)
    : servers_(servers), slow_start_(slow_start), rng_(seed) {}

Server* TwoChoicesBalancer::select(const SelectContext& ctx) {
  if (Server* s = pick(ctx, false)) return s;
  return pick(ctx, true);
}

Server* TwoChoicesBalancer::pick(const SelectContext& ctx, bool backups) {
  Server* a;
  Server* b;
  if (!WeightedSampler::draw_two(servers_, ctx, backups, slow_start_, rng_, a, b)) return nullptr;
  if (a == b) return a;
  return prefer(a, a->effective_weight(ctx.now, slow_start_), b,
                b->effective_weight(ctx.now, slow_start_));
}

}  // namespace sag::affinity
