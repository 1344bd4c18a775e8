#include "affinity/balance/maglev_balancer.h"

#include <vector>

#include "affinity/model/server.h"
#include "affinity/balance/stable_hash.h"
#include "affinity/balance/weighted_sampler.h"

namespace sag::affinity {

std::shared_ptr<const MaglevTable> MaglevBalancer::build_table(std::span<Server* const> servers,
                                                               bool backups) {
  std::vector<MaglevTable::Entry> entries;
  // Entries name servers by position in `servers` (the balancer's span),
  // not by id: ids of a reloaded backend have gaps.
  for (size_t i = 0; i < servers.size(); ++i)
    if (servers[i]->backup() == backups)
      entries.push_back({servers[i]->name(), servers[i]->weight(), static_cast<uint32_t>(i)});
  return std::make_shared<const MaglevTable>(entries);
}

MaglevBalancer::MaglevBalancer(std::span<Server* const> servers,
                               std::shared_ptr<const MaglevTable> primaries,
                               std::shared_ptr<const MaglevTable> backups,
                               std::chrono::milliseconds slow_start)
    : servers_(servers),
      primaries_(std::move(primaries)),
      backups_(std::move(backups)),
      slow_start_(slow_start) {}

MaglevBalancer::MaglevBalancer(std::span<Server* const> servers,
                               std::chrono::milliseconds slow_start)
    : MaglevBalancer(servers, build_table(servers, false), build_table(servers, true),
                     slow_start) {}

Server* MaglevBalancer::select(const SelectContext& ctx) {
  if (Server* s = pick(*primaries_, ctx, false)) return s;
  return pick(*backups_, ctx, true);
}

bool MaglevBalancer::keeps_key(const MaglevTable& table, uint32_t position, const Server& s,
                               const SelectContext& ctx) const {
  const uint64_t table_weight = table.weight_of(position);
  const uint64_t eff = s.effective_weight(ctx.now, slow_start_);
  if (eff >= table_weight) return true;
  const uint64_t r = mix64(ctx.hash ^ 0x6a09e667f3bcc909ULL) & 0xffff;
  return r * table_weight < eff * 0x10000;
}

Server* MaglevBalancer::pick(const MaglevTable& table, const SelectContext& ctx,
                             bool backups) const {
  if (table.empty()) return nullptr;
  const size_t m = table.size();
  const size_t max_distinct = 2 * table.servers() + 8;
  const size_t max_slots = 4 * table.servers() + 16;
  size_t slot = ctx.hash % m;
  uint32_t prev = UINT32_MAX;
  size_t distinct = 0;
  for (size_t probe = 0; probe < max_slots && distinct < max_distinct; ++probe) {
    const uint32_t id = table.at(slot);
    slot = slot + 1 == m ? 0 : slot + 1;
    if (id == prev) continue;
    prev = id;
    ++distinct;
    if (id >= servers_.size()) continue;
    const Server& s = *servers_[id];
    if (WeightedSampler::eligible(s, ctx, backups) && keeps_key(table, id, s, ctx))
      return servers_[id];
  }
  // Bounded probing found nothing (most of the tier down): the first
  // eligible server from a key-dependent start, shedding ignored.
  const size_t n = servers_.size();
  if (n == 0) return nullptr;
  const size_t start = ctx.hash % n;
  for (size_t k = 0; k < n; ++k) {
    Server* s = servers_[(start + k) % n];
    if (WeightedSampler::eligible(*s, ctx, backups)) return s;
  }
  return nullptr;
}

}  // namespace sag::affinity
