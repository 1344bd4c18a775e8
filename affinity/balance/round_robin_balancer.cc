#include "affinity/balance/round_robin_balancer.h"

#include "affinity/model/server.h"

namespace sag::affinity {

RoundRobinBalancer::RoundRobinBalancer(std::span<Server* const> servers,
                                       std::chrono::milliseconds slow_start)
    : servers_(servers), slow_start_(slow_start), score_(servers.size(), 0) {}

Server* RoundRobinBalancer::select(const SelectContext& ctx) {
  if (Server* s = pick(ctx, false)) return s;
  return pick(ctx, true);
}

Server* RoundRobinBalancer::pick(const SelectContext& ctx, bool backups) {
  int64_t total = 0;
  size_t best = servers_.size();
  for (size_t i = 0; i < servers_.size(); ++i) {
    Server* s = servers_[i];
    if (s->backup() != backups || !s->usable_for_new() || is_excluded(ctx.excluded, s->index()))
      continue;
    const int64_t w = s->effective_weight(ctx.now, slow_start_);
    score_[i] += w;
    total += w;
    if (best == servers_.size() || score_[i] > score_[best]) best = i;
  }
  if (best == servers_.size()) return nullptr;
  score_[best] -= total;
  return servers_[best];
}

}  // namespace sag::affinity
