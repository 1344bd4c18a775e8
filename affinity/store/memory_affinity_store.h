// The in-process AffinityStore (`affinity_store.type: memory`, and the local
// copy behind Redis): sharded, bounded, with TTL, and about 43 bytes per
// entry whatever the key's length (keys are not stored). A hit costs one
// dependent cache miss.
//
// - Keys are not kept: each is reduced to a 128-bit keyed fingerprint,
//   SipHash-2-4-128 under a 128-bit key drawn from getrandom() when the store
//   is built. Two keys are the same entry iff their fingerprints are equal.
//   Keys carry client-chosen values (session cookies, addresses), but
//   without the secret key a client cannot compute or test fingerprints
//   offline (SipHash is a PRF), so crafting a collision takes online luck:
//   modelling it as a random function, two distinct keys collide with
//   probability 2^-128; with n entries held and q lookups, P(any lookup
//   aliases) <= n * q / 2^128 (1e6 entries, 1e15 lookups: < 3e-18), and
//   over p puts P(two stored keys alias) <= p^2 / 2^129. A collision would
//   only send a request to another session's server (affinity, not
//   authentication).
// - Shards: 64 by default (a power of two, fewer when capacity is smaller),
//   each with its own std::mutex and its own region of one table, chosen by
//   the top bits of the fingerprint's high word; every worker thread may
//   call in at once.
// - Table: open addressing, entries inline. A slot is 32 bytes (fingerprint,
//   expiry, server, CLOCK count, backend tag); two slots form a 64-byte, cache-line
//   aligned bucket. A key's home bucket is fastrange(fingerprint.lo,
//   buckets); Robin Hood linear probing by slot from the home bucket's first
//   slot, backward-shift deletion (no tombstones). Sized once for the
//   shard's capacity at load <= 3/4 (never grown or rehashed), so a hit is
//   one dependent cache miss: the home bucket's line, with the next line
//   prefetched alongside (at full load 58% of entries sit in their home
//   bucket, 87% within those two lines, 99% within four).
// - Capacity: `capacity` entries in total, split evenly between shards; a
//   shard never holds more than its share. A full shard evicts by CLOCK, an
//   approximation of LRU ("least recently used goes first" up to a
//   revolution of the hand, not in exact order): each entry has a 2-bit
//   count, 1 when inserted, 2 after a find() hit, a put() update or a
//   refresh(). The shard's hand visits the slots (both of a bucket, then a
//   bucket a fixed ~0.618 of the table further on, so every bucket once a
//   revolution but scattered: evicting in address order would empty one
//   region while inserts land everywhere, and probe runs ahead of the hand
//   would grow to thousands of slots). An expired entry or one whose count is 0 is the
//   victim; the others are decremented. So an entry used since the hand
//   last passed it survives the next pass, and an entry goes only after the
//   hand has passed it with no use in between. The walk is bounded: after
//   32 live entries it evicts the lowest-count one it saw.
// - TTL: no sweeper and no full scan ever runs under a lock. An expired
//   entry is dropped when find() meets it, each put() checks the next 2
//   slots of its shard's sweep cursor (which moves like the hand) and drops
//   the expired ones, and eviction takes an expired entry before any live
//   one it meets.
// - Memory: the slot table only, one anonymous mmap: 32 bytes a slot, 4/3
//   slot per entry of capacity, so 42.7 bytes per entry at capacity (44.8
//   in the benchmark's 1M entries in a 1.05M store); nothing per key.
//   Committed as touched; from 32 MiB (capacity ~790k) it asks for 2 MiB
//   pages (fewer TLB misses), and is then soon all resident.
//   memory_bytes() reports it; measured by bench/store_bench.cc
//   (sag_bench_store).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "affinity/store/affinity_store.h"

namespace sag::affinity {

class MemoryAffinityStore final : public AffinityStore {
 public:
  static constexpr uint32_t kDefaultShards = 64;
  // Fewer shards than asked for when capacity / shards would be below this.
  static constexpr uint64_t kMinPerShard = 1024;

  struct Fingerprint {
    uint64_t lo = 0, hi = 0;
    bool operator==(const Fingerprint&) const = default;
  };
  struct HashKey {
    uint64_t k0 = 0, k1 = 0;
  };
  // SipHash-2-4 with 128-bit output: lo/hi are the first/second 8 output
  // bytes read little-endian (the reference's byte order).
  static Fingerprint siphash128(std::string_view data, const HashKey& key);

  // `shards` is rounded down to a power of two and to at most `capacity`.
  // capacity 0 stores nothing.
  explicit MemoryAffinityStore(uint64_t capacity, uint32_t shards = kDefaultShards);
  // Tests only: fingerprints come from `fingerprint` (to force collisions of
  // 64-bit halves) instead of the keyed SipHash.
  using FingerprintFn = Fingerprint (*)(std::string_view key);
  MemoryAffinityStore(uint64_t capacity, uint32_t shards, FingerprintFn fingerprint);
  ~MemoryAffinityStore() override;
  MemoryAffinityStore(const MemoryAffinityStore&) = delete;
  MemoryAffinityStore& operator=(const MemoryAffinityStore&) = delete;

  std::optional<ServerId> find(std::string_view key, TimePoint now) override;
  void put(std::string_view key, ServerId server, Duration ttl, TimePoint now) override;
  ServerId claim(std::string_view key, ServerId server, Duration ttl, TimePoint now) override;
  // One fingerprint and one shard lock, as find(); always extends (writing
  // the expiry costs no more than deciding to skip it).
  void refresh(std::string_view key, ServerId server, Duration ttl, TimePoint now) override;
  void erase(std::string_view key) override;

  // refresh() that says what it did, for a store layered on this one: true
  // when the entry names `server` and its expiry moved to now + ttl, which
  // it does only when that is at least `min_step` past the expiry it had
  // (0: any later one). False when absent, expired, naming another server,
  // or not due. Thread-safe, as every method.
  bool extend(std::string_view key, ServerId server, Duration ttl, TimePoint now, Duration min_step);

  // ---- state files (state_file.h): saved at a graceful stop, adopted by
  // the next process before it serves. Not for the request path.

  // 16 bits of the backend a key belongs to (the key's part before its
  // first NUL, AffinityKey), kept in each entry: a state file names servers
  // by backend and name, and an entry's fingerprint doesn't tell its
  // backend.
  static uint16_t backend_tag(std::string_view key);
  struct SavedEntry {
    Fingerprint fp;
    int64_t ttl_ns;  // time left; kNoExpiry: never expires
    ServerId server;
    uint16_t backend_tag;
  };
  // Live entries at `now`, a shard at a time under its lock.
  std::vector<SavedEntry> live_entries(TimePoint now) const;
  // The fingerprint key: keys find their entries only under the key that
  // filed them.
  HashKey hash_key() const { return hash_key_; }
  // Takes another store's fingerprint key and entries (expiring ttl_ns
  // after `now`). Only while this store is empty and no other thread uses
  // it (before the workers start): false, and nothing changed, otherwise.
  bool adopt(const HashKey& key, const std::vector<SavedEntry>& entries, TimePoint now);
  // Adds the entries this store lacks (saved under this store's key, as a
  // process being upgraded hands them over while this one serves): an
  // entry this store already has, its own decision, is kept. Thread-safe.
  // Returns the entries added.
  size_t merge(const std::vector<SavedEntry>& entries, TimePoint now);

  // Entries held, expired ones not yet dropped included. Locks each shard in
  // turn: for metrics, not the request path.
  size_t size() const;
  uint64_t capacity() const { return capacity_; }
  uint32_t shard_count() const { return shard_count_; }
  // Bytes of the slot table: all the store allocates besides its shard
  // headers (128 bytes each).
  size_t memory_bytes() const { return table_bytes_; }

 private:
  struct Slot;
  struct Shard;

  Fingerprint fingerprint(std::string_view key) const {
    return test_fingerprint_ ? test_fingerprint_(key) : siphash128(key, hash_key_);
  }
  Shard& shard_for(const Fingerprint& fp) const;
  // Files the entry; with only_if_absent, leaves a live one as it is
  // (false then, and *existing names its server when given).
  bool put_fingerprint(const Fingerprint& fp, ServerId server, uint16_t tag, int64_t expires,
                       int64_t now_ns, bool only_if_absent = false, ServerId* existing = nullptr);

  HashKey hash_key_;
  FingerprintFn test_fingerprint_ = nullptr;
  uint64_t capacity_;
  uint32_t shard_count_;
  int shard_shift_;  // fp.hi >> shard_shift_ = shard (64 when one shard)
  void* table_ = nullptr;
  size_t table_bytes_ = 0;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace sag::affinity
