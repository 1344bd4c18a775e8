// Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup table of
// M slots (M prime, at least 100 x servers; 65537 up to 655 servers), each
// naming a server. Every server walks its own permutation of the slots
// (offset and skip from stable_hash64 of its name, so every replica builds
// the same table) and takes turns claiming the next free slot; heavier
// servers get proportionally more turns, so slot counts follow the weights.
// Removing or adding one of N servers moves about 1/N of the slots.
//
// Built once per backend config and shared read-only by every worker.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace sag::affinity {

class MaglevTable {
 public:
  struct Entry {
    std::string_view name;  // identity: decides the permutation
    uint32_t weight;        // 0 counts as 1 (kept in the table, never usable)
    uint32_t id;            // what lookups return (the server's position in its balancer)
  };

  explicit MaglevTable(std::span<const Entry> entries);

  // Smallest prime >= max(65537, 100 * servers).
  static uint64_t size_for(size_t servers);

  bool empty() const { return slots_.empty(); }
  size_t size() const { return slots_.size(); }
  size_t servers() const { return servers_; }
  uint32_t at(size_t slot) const { return slots_[slot]; }
  // The weight the table was built with for this id (0 if not in the table).
  uint32_t weight_of(uint32_t id) const { return id < weights_.size() ? weights_[id] : 0; }

 private:
  std::vector<uint32_t> slots_;
  std::vector<uint32_t> weights_;  // by id
  size_t servers_ = 0;
};

}  // namespace sag::affinity
