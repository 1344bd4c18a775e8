#include "affinity/least_time_balancer.h"

#include "affinity/server.h"
#include "affinity/weighted_sampler.h"

namespace sag::affinity {

namespace {

double score(const Server& s, uint32_t weight) {
  if (!s.has_response_time()) return 0.0;
  const double ewma = static_cast<double>(s.response_time_ewma().count()) + 1.0;
  const double active = static_cast<double>(s.active_requests()) + 1.0;
  return ewma * active / static_cast<double>(weight == 0 ? 1 : weight);
}

}  // namespace

LeastTimeBalancer::LeastTimeBalancer(std::span<Server* const> servers,
                                     std::chrono::milliseconds slow_start, uint64_t seed)
    : servers_(servers), slow_start_(slow_start), rng_(seed) {}

Server* LeastTimeBalancer::select(const SelectContext& ctx) {
  if (Server* s = pick(ctx, false)) return s;
  return pick(ctx, true);
}

Server* LeastTimeBalancer::pick(const SelectContext& ctx, bool backups) {
  Server* a;
  Server* b;
  if (!WeightedSampler::draw_two(servers_, ctx, backups, slow_start_, rng_, a, b)) return nullptr;
  if (a == b) return a;
  const uint32_t wa = a->effective_weight(ctx.now, slow_start_);
  const uint32_t wb = b->effective_weight(ctx.now, slow_start_);
  const double sa = score(*a, wa);
  const double sb = score(*b, wb);
  if (sb != sa) return sb < sa ? b : a;
  // Equal scores (both unmeasured): fewer active per weight, else the first.
  return fewer_active_per_weight(a, wa, b, wb);
}

}  // namespace sag::affinity
