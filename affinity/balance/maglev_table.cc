#include "affinity/balance/maglev_table.h"

#include <algorithm>
#include <limits>

#include "affinity/balance/stable_hash.h"

namespace sag::affinity {

namespace {

bool is_prime(uint64_t n) {
  if (n < 2) return false;
  for (uint64_t d = 2; d * d <= n; ++d)
    if (n % d == 0) return false;
  return true;
}

}  // namespace

uint64_t MaglevTable::size_for(size_t servers) {
  uint64_t m = std::max<uint64_t>(65537, 100 * static_cast<uint64_t>(servers));
  while (!is_prime(m)) ++m;
  return m;
}

MaglevTable::MaglevTable(std::span<const Entry> entries) : servers_(entries.size()) {
  if (entries.empty()) return;
  const uint64_t m = size_for(entries.size());
  constexpr uint32_t kFree = std::numeric_limits<uint32_t>::max();
  slots_.assign(m, kFree);

  const size_t n = entries.size();
  std::vector<uint64_t> pos(n), skip(n), credit(n, 0);
  uint64_t max_weight = 1;
  uint32_t max_id = 0;
  for (size_t i = 0; i < n; ++i) {
    pos[i] = stable_hash64(entries[i].name, 1) % m;
    skip[i] = stable_hash64(entries[i].name, 2) % (m - 1) + 1;
    max_weight = std::max<uint64_t>(max_weight, std::max<uint32_t>(entries[i].weight, 1));
    max_id = std::max(max_id, entries[i].id);
  }
  weights_.assign(static_cast<size_t>(max_id) + 1, 0);
  for (const auto& e : entries) weights_[e.id] = std::max<uint32_t>(e.weight, 1);

  // Rounds: each server earns its weight in credit; a full max_weight of
  // credit buys one turn (one slot). The heaviest server takes a turn every
  // round, a server of half the weight every other round.
  uint64_t filled = 0;
  while (filled < m) {
    for (size_t i = 0; i < n && filled < m; ++i) {
      credit[i] += std::max<uint32_t>(entries[i].weight, 1);
      while (credit[i] >= max_weight && filled < m) {
        credit[i] -= max_weight;
        while (slots_[pos[i]] != kFree) pos[i] = (pos[i] + skip[i]) % m;
        slots_[pos[i]] = entries[i].id;
        pos[i] = (pos[i] + skip[i]) % m;
        ++filled;
      }
    }
  }
}

}  // namespace sag::affinity
