// `balance: source` and `balance: hash`: consistent hashing over a Maglev
// table (affinity/balance/maglev_table.h). The caller puts the request key's
// stable_hash64() in SelectContext::hash (the masked client address for
// `source`, the hash_key's value for `hash`).
//
// Lookup: slot = hash % table size. When that server is unusable, excluded,
// or shedding this key (below), the following slots are probed, at most
// 2 x servers + 8 distinct servers (4 x servers + 16 slots) — so the keys of
// a down server spread over the others while every other key stays put —
// then a linear scan of the tier from hash % servers. Never unbounded.
//
// Backups have their own table, used only when no primary is eligible.
//
// Weights are those of the config, baked into the table. At run time a
// server whose effective weight (slow start, or an admin lowering it) is
// below its table weight keeps only that fraction of its keys: key k stays
// when (mix64(k ^ c) mod 2^16) * table_weight < effective * 2^16, so a
// returning server takes back 1/10 of its keys at once, then more as it
// ramps, and a key once taken back stays. Raising a weight above the
// config's adds no keys until the config is reloaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>

#include "affinity/balance/balancer.h"
#include "affinity/balance/maglev_table.h"

namespace sag::affinity {

class MaglevBalancer final : public Balancer {
 public:
  // The tables for `servers`, built once per backend and shared by workers:
  // `backups` false for the primaries' table, true for the backups'.
  static std::shared_ptr<const MaglevTable> build_table(std::span<Server* const> servers,
                                                        bool backups);

  // `servers` (indexed by Server::index()) must outlive the balancer.
  MaglevBalancer(std::span<Server* const> servers, std::shared_ptr<const MaglevTable> primaries,
                 std::shared_ptr<const MaglevTable> backups, std::chrono::milliseconds slow_start);
  // Builds its own tables (tests, tools).
  MaglevBalancer(std::span<Server* const> servers, std::chrono::milliseconds slow_start);

  Server* select(const SelectContext& ctx) override;

 private:
  Server* pick(const MaglevTable& table, const SelectContext& ctx, bool backups) const;
  // `position`: the server's place in servers_ (its id in the table).
  bool keeps_key(const MaglevTable& table, uint32_t position, const Server& s,
                 const SelectContext& ctx) const;

  std::span<Server* const> servers_;
  std::shared_ptr<const MaglevTable> primaries_;
  std::shared_ptr<const MaglevTable> backups_;
  std::chrono::milliseconds slow_start_;
};

}  // namespace sag::affinity
