#include "affinity/balance/least_conn_balancer.h"

#include "affinity/model/server.h"
#include "affinity/balance/weighted_sampler.h"

namespace sag::affinity {

LeastConnBalancer::LeastConnBalancer(std::span<Server* const> servers,
                                     std::chrono::milliseconds slow_start)
    : servers_(servers), slow_start_(slow_start), score_(servers.size(), 0) {}

Server* LeastConnBalancer::select(const SelectContext& ctx) {
  if (Server* s = pick(ctx, false)) return s;
  return pick(ctx, true);
}

Server* LeastConnBalancer::pick(const SelectContext& ctx, bool backups) {
  const size_t n = servers_.size();
  // Pass 1: the least loaded ratio, and how many servers share it.
  size_t best = n;
  uint64_t best_active = 0;
  uint32_t best_weight = 0;
  size_t ties = 0;
  for (size_t i = 0; i < n; ++i) {
    const Server& s = *servers_[i];
    if (!WeightedSampler::eligible(s, ctx, backups)) continue;
    const uint32_t w = s.effective_weight(ctx.now, slow_start_);
    if (w == 0) continue;
    const uint64_t active = s.active_requests();
    if (best == n) {
      best = i, best_active = active, best_weight = w, ties = 1;
      continue;
    }
    const unsigned __int128 lhs = static_cast<unsigned __int128>(active) * best_weight;
    const unsigned __int128 rhs = static_cast<unsigned __int128>(best_active) * w;
    if (lhs < rhs) {
      best = i, best_active = active, best_weight = w, ties = 1;
    } else if (lhs == rhs) {
      ++ties;
    }
  }
  if (best == n || ties == 1) return best == n ? nullptr : servers_[best];
  // Pass 2: smooth weighted round robin among the tied servers. A server
  // whose load changed since pass 1 simply drops out of the tie.
  int64_t total = 0;
  size_t chosen = n;
  for (size_t i = best; i < n; ++i) {
    const Server& s = *servers_[i];
    if (!WeightedSampler::eligible(s, ctx, backups)) continue;
    const uint32_t w = s.effective_weight(ctx.now, slow_start_);
    if (w == 0) continue;
    const unsigned __int128 lhs = static_cast<unsigned __int128>(s.active_requests()) * best_weight;
    const unsigned __int128 rhs = static_cast<unsigned __int128>(best_active) * w;
    if (lhs != rhs) continue;
    score_[i] += w;
    total += w;
    if (chosen == n || score_[i] > score_[chosen]) chosen = i;
  }
  if (chosen == n) return servers_[best];
  score_[chosen] -= total;
  return servers_[chosen];
}

}  // namespace sag::affinity
