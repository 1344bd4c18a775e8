#include "affinity/balance/weighted_sampler.h"

namespace sag::affinity {

bool WeightedSampler::draw_two(std::span<Server* const> servers, const SelectContext& ctx,
                               bool backups, std::chrono::milliseconds slow_start, FastRng& rng,
                               Server*& first, Server*& second) {
  uint64_t total = 0;
  for (Server* s : servers)
    if (eligible(*s, ctx, backups)) total += s->effective_weight(ctx.now, slow_start);
  first = second = nullptr;
  if (total == 0) return false;
  const uint64_t r1 = rng.below(total);
  const uint64_t r2 = rng.below(total);
  // Second pass: state may have changed under us (another thread marked a
  // server down); whatever is not found falls back to the last eligible one.
  uint64_t acc = 0;
  Server* last = nullptr;
  for (Server* s : servers) {
    if (!eligible(*s, ctx, backups)) continue;
    last = s;
    acc += s->effective_weight(ctx.now, slow_start);
    if (!first && r1 < acc) first = s;
    if (!second && r2 < acc) second = s;
    if (first && second) return true;
  }
  if (!last) return false;
  if (!first) first = last;
  if (!second) second = last;
  return true;
}

Server* fewer_active_per_weight(Server* a, uint32_t wa, Server* b, uint32_t wb) {
  const unsigned __int128 load_a = static_cast<unsigned __int128>(a->active_requests()) * wb;
  const unsigned __int128 load_b = static_cast<unsigned __int128>(b->active_requests()) * wa;
  return load_b < load_a ? b : a;
}

}  // namespace sag::affinity
