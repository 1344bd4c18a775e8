// The in-process AffinityStore (`affinity_store.type: memory`, and the local
// copy behind Redis): sharded, bounded, with TTL.
//
// - Shards: 64 by default (a power of two, fewer when capacity is smaller),
//   each with its own std::mutex, chosen by the top bits of the key's
//   stable_hash64(); every worker thread may call in at once.
// - Capacity: `capacity` entries in total, split evenly between shards; a
//   full shard evicts its least recently used entry (exact LRU: an intrusive
//   doubly linked list per shard; find() and put() move to the front).
// - TTL: no sweeper and no full scan ever runs under a lock. An expired
//   entry is dropped when find() meets it, and each put() also drops up to
//   two expired entries from the LRU end of its shard; the rest leave by
//   LRU eviction.
// - Memory: one allocation per entry (a 40-byte header with the key bytes
//   after it) plus an open-addressing index of one pointer per slot (linear
//   probing, load <= 0.6, grown by doubling, backward-shift deletion).
//   Measured by bench/store_bench.cc (sag_bench_store).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "affinity/affinity_store.h"

namespace sag::affinity {

class MemoryAffinityStore final : public AffinityStore {
 public:
  static constexpr uint32_t kDefaultShards = 64;

  // `shards` is rounded down to a power of two and to at most `capacity`
  // (tests use 1 for an exact, global LRU order). capacity 0 stores nothing.
  explicit MemoryAffinityStore(uint64_t capacity, uint32_t shards = kDefaultShards);
  ~MemoryAffinityStore() override;
  MemoryAffinityStore(const MemoryAffinityStore&) = delete;
  MemoryAffinityStore& operator=(const MemoryAffinityStore&) = delete;

  std::optional<ServerId> find(std::string_view key, TimePoint now) override;
  void put(std::string_view key, ServerId server, Duration ttl, TimePoint now) override;
  void erase(std::string_view key) override;

  // Entries held, expired ones not yet dropped included. Locks each shard in
  // turn: for metrics, not the request path.
  size_t size() const;
  uint64_t capacity() const { return capacity_; }
  uint32_t shard_count() const { return shard_count_; }

 private:
  struct Node;
  struct Shard;

  Shard& shard_for(uint64_t hash) const;

  uint64_t capacity_;
  uint32_t shard_count_;
  int shard_shift_;  // hash >> shard_shift_ = shard (64 when one shard)
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace sag::affinity
