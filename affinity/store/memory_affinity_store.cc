#include "affinity/store/memory_affinity_store.h"

#include <sys/mman.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>
#include <numeric>
#include <utility>
#include <vector>

#include "config/base/random.h"

namespace sag::affinity {

namespace {

inline uint64_t load_le64(const unsigned char* p, size_t n) {
  uint64_t w = 0;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&w, p, n);
  } else {
    for (size_t i = 0; i < n; ++i) w |= static_cast<uint64_t>(p[i]) << (8 * i);
  }
  return w;
}

#define SAG_SIPROUND                         \
  do {                                       \
    v0 += v1;                                \
    v1 = std::rotl(v1, 13);                  \
    v1 ^= v0;                                \
    v0 = std::rotl(v0, 32);                  \
    v2 += v3;                                \
    v3 = std::rotl(v3, 16);                  \
    v3 ^= v2;                                \
    v0 += v3;                                \
    v3 = std::rotl(v3, 21);                  \
    v3 ^= v0;                                \
    v2 += v1;                                \
    v1 = std::rotl(v1, 17);                  \
    v1 ^= v2;                                \
    v2 = std::rotl(v2, 32);                  \
  } while (0)

MemoryAffinityStore::HashKey random_hash_key() {
  uint64_t k[2];
  base::random_bytes(k, sizeof k);
  return {k[0], k[1]};
}

bool expired(int64_t expires_ns, int64_t now_ns) { return now_ns >= expires_ns; }

// fastrange: x scaled onto [0, n) by its high bits.
inline size_t scale(uint64_t x, size_t n) {
  return static_cast<size_t>((static_cast<unsigned __int128>(x) * n) >> 64);
}

constexpr size_t kNone = ~size_t{0};
constexpr int kClockSteps = 32;   // live entries the hand passes before forcing a victim
constexpr int kSweepPerPut = 2;   // slots each put() checks for expired entries
constexpr size_t kHugePagesFrom = size_t{32} << 20;  // table bytes

}  // namespace

MemoryAffinityStore::Fingerprint MemoryAffinityStore::siphash128(std::string_view data,
                                                                 const HashKey& key) {
  uint64_t v0 = 0x736f6d6570736575ULL ^ key.k0;
  uint64_t v1 = 0x646f72616e646f6dULL ^ key.k1 ^ 0xee;
  uint64_t v2 = 0x6c7967656e657261ULL ^ key.k0;
  uint64_t v3 = 0x7465646279746573ULL ^ key.k1;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t len = data.size();
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const uint64_t m = load_le64(p + i, 8);
    v3 ^= m;
    SAG_SIPROUND;
    SAG_SIPROUND;
    v0 ^= m;
  }
  const uint64_t b = (static_cast<uint64_t>(len) << 56) | (i < len ? load_le64(p + i, len - i) : 0);
  v3 ^= b;
  SAG_SIPROUND;
  SAG_SIPROUND;
  v0 ^= b;
  v2 ^= 0xee;
  SAG_SIPROUND;
  SAG_SIPROUND;
  SAG_SIPROUND;
  SAG_SIPROUND;
  Fingerprint fp;
  fp.lo = v0 ^ v1 ^ v2 ^ v3;
  v1 ^= 0xdd;
  SAG_SIPROUND;
  SAG_SIPROUND;
  SAG_SIPROUND;
  SAG_SIPROUND;
  fp.hi = v0 ^ v1 ^ v2 ^ v3;
  return fp;
}

#undef SAG_SIPROUND

// One entry, inline in the table. meta 0 = free slot.
struct MemoryAffinityStore::Slot {
  uint64_t fp_lo;
  uint64_t fp_hi;
  int64_t expires_ns;  // steady clock ns; kNoExpiry = never
  ServerId server;
  uint16_t meta;         // kOccupied | CLOCK count (0..2)
  uint16_t backend_tag;  // backend_tag(key): which backend's entry (state files)
};
static_assert(sizeof(MemoryAffinityStore::Fingerprint) == 16);

namespace {
constexpr uint16_t kOccupied = 4;
constexpr uint16_t kCountMask = 3;
constexpr uint16_t kInserted = 1;  // CLOCK count of a new entry
constexpr uint16_t kUsed = 2;      // ... after a hit or an update
}  // namespace

struct alignas(64) MemoryAffinityStore::Shard {
  static_assert(sizeof(Slot) == 32);  // two a cache line
  std::mutex mu;
  // Fixed at construction (read without the lock):
  Slot* slots = nullptr;  // nslots entries, 64-byte aligned
  size_t nslots = 0;      // 2 * nbuckets
  size_t nbuckets = 0;
  size_t capacity = 0;
  size_t stride = 0;  // see step()
  // Under mu:
  size_t size = 0;
  size_t hand = 0;   // CLOCK hand (a slot index)
  size_t sweep = 0;  // expiry sweep cursor (a slot index)

  size_t home(uint64_t fp_lo) const { return 2 * scale(fp_lo, nbuckets); }
  size_t next(size_t i) const { return i + 1 == nslots ? 0 : i + 1; }
  // Robin Hood distance of the entry in slot i from its home slot.
  size_t dist(size_t i) const {
    const size_t h = home(slots[i].fp_lo);
    return i >= h ? i - h : i + nslots - h;
  }
  // The home bucket's line and the next one (entries spill into it).
  void prefetch(size_t h) const {
    __builtin_prefetch(&slots[h]);
    __builtin_prefetch(&slots[h + 2 == nslots ? 0 : h + 2]);
  }

  // Slot of the entry with this fingerprint, or kNone.
  size_t probe(const Fingerprint& fp, size_t h) const {
    size_t i = h;
    for (size_t d = 0;; ++d) {
      const Slot& s = slots[i];
      if (s.meta == 0) return kNone;
      if (s.fp_lo == fp.lo && s.fp_hi == fp.hi) return i;
      // Robin Hood order: a run holds entries by increasing home, so an
      // entry closer to its home than we are to ours ends the search.
      if (dist(i) < d) return kNone;
      i = next(i);
    }
  }

  void insert(Slot cur) {
    size_t i = home(cur.fp_lo);
    for (size_t d = 0;; ++d) {
      Slot& s = slots[i];
      if (s.meta == 0) {
        s = cur;
        ++size;
        return;
      }
      const size_t sd = dist(i);
      if (sd < d) {  // take from the rich: the displaced entry moves on
        std::swap(s, cur);
        d = sd;
      }
      i = next(i);
    }
  }

  // Backward-shift deletion: later entries of the run move one slot closer
  // to home, so no tombstones and probes stay short.
  void remove_at(size_t i) {
    for (;;) {
      const size_t j = next(i);
      if (slots[j].meta == 0 || dist(j) == 0) break;
      slots[i] = slots[j];
      i = j;
    }
    slots[i] = Slot{};
    --size;
  }

  // The CLOCK hand and the sweep cursor visit both slots of a bucket, then
  // jump `stride` buckets (coprime with nbuckets, about 0.618 of it: every
  // bucket once a revolution, in an order scattered over the table). Not in
  // address order: eviction would then empty one region while inserts land
  // everywhere, and the probe runs ahead of the hand grow to thousands.
  size_t step(size_t i) const {
    if ((i & 1) == 0 && i + 1 < nslots) return i + 1;
    const size_t b = i / 2 + stride;
    return 2 * (b >= nbuckets ? b - nbuckets : b);
  }

  // Makes room for one entry (size > 0): the first expired or count-0 entry
  // from the hand on, decrementing the others; after kClockSteps live
  // entries, the lowest-count one seen.
  void evict_one(int64_t now_ns) {
    size_t best = kNone;
    uint32_t best_count = kCountMask + 1u;
    int seen = 0;
    for (;; hand = step(hand)) {
      Slot& s = slots[hand];
      if (s.meta == 0) continue;
      const uint32_t c = s.meta & kCountMask;
      if (c == 0 || expired(s.expires_ns, now_ns)) {
        remove_at(hand);  // the hand stays: an entry may have shifted in
        return;
      }
      if (c < best_count) {
        best_count = c;
        best = hand;
      }
      --s.meta;
      if (++seen == kClockSteps) {
        hand = step(hand);
        remove_at(best);
        return;
      }
    }
  }

  // Checks the next kSweepPerPut slots for expired entries.
  void sweep_expired(int64_t now_ns) {
    for (int k = 0; k < kSweepPerPut; ++k) {
      const Slot& s = slots[sweep];
      if (s.meta != 0 && expired(s.expires_ns, now_ns)) {
        remove_at(sweep);  // stays: an entry may have shifted in
      } else {
        sweep = step(sweep);
      }
    }
  }
};

MemoryAffinityStore::MemoryAffinityStore(uint64_t capacity, uint32_t shards)
    : MemoryAffinityStore(capacity, shards, nullptr) {}

MemoryAffinityStore::MemoryAffinityStore(uint64_t capacity, uint32_t shards,
                                         FingerprintFn fingerprint)
    : hash_key_(random_hash_key()), test_fingerprint_(fingerprint), capacity_(capacity) {
  uint64_t n = shards == 0 ? 1 : std::bit_floor(static_cast<uint64_t>(shards));
  // Every shard holds at least kMinPerShard entries: keys spread over the
  // shards only statistically, and a shard of a handful of entries would
  // evict while the store as a whole has room.
  while (n > 1 && n * kMinPerShard > capacity) n /= 2;
  shard_count_ = static_cast<uint32_t>(n);
  shard_shift_ = 64 - std::countr_zero(n);
  shards_ = std::make_unique<Shard[]>(shard_count_);
  size_t total_slots = 0;
  for (uint32_t i = 0; i < shard_count_; ++i) {
    Shard& sh = shards_[i];
    sh.capacity = capacity / n + (i < capacity % n ? 1 : 0);
    // Load <= 3/4 when full: slots >= capacity * 4/3, two slots a bucket.
    sh.nbuckets = (2 * sh.capacity + 2) / 3;
    sh.nslots = 2 * sh.nbuckets;
    if (sh.nbuckets > 1) {
      sh.stride = static_cast<size_t>(static_cast<double>(sh.nbuckets) * 0.6180339887);
      if (sh.stride == 0) sh.stride = 1;
      while (std::gcd(sh.stride, sh.nbuckets) != 1) ++sh.stride;
    }
    total_slots += sh.nslots;
  }
  table_bytes_ = total_slots * sizeof(Slot);
  if (table_bytes_ == 0) return;
  // Anonymous memory: zero (all slots free), page aligned, committed as
  // touched.
  void* mem = mmap(nullptr, table_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw std::bad_alloc();
  // A big table is read at random: 2 MiB pages spare most lookups a TLB
  // miss (+~8% lookups/s at 1M entries). They also commit the table in
  // 2 MiB steps, so it is soon all resident; a store that size is
  // configured to be filled.
  if (table_bytes_ >= kHugePagesFrom) madvise(mem, table_bytes_, MADV_HUGEPAGE);
  table_ = mem;
  Slot* next = static_cast<Slot*>(mem);
  for (uint32_t i = 0; i < shard_count_; ++i) {
    shards_[i].slots = next;
    next += shards_[i].nslots;
  }
}

MemoryAffinityStore::~MemoryAffinityStore() {
  if (table_) munmap(table_, table_bytes_);
}

MemoryAffinityStore::Shard& MemoryAffinityStore::shard_for(const Fingerprint& fp) const {
  return shards_[shard_shift_ >= 64 ? 0 : fp.hi >> shard_shift_];
}

std::optional<ServerId> MemoryAffinityStore::find(std::string_view key, TimePoint now) {
  const Fingerprint fp = fingerprint(key);
  Shard& sh = shard_for(fp);
  if (sh.nslots == 0) return std::nullopt;
  const size_t h = sh.home(fp.lo);
  sh.prefetch(h);  // the miss overlaps taking the lock
  const int64_t now_ns = to_ns(now);
  std::lock_guard lock(sh.mu);
  const size_t i = sh.probe(fp, h);
  if (i == kNone) return std::nullopt;
  Slot& s = sh.slots[i];
  if (expired(s.expires_ns, now_ns)) {
    sh.remove_at(i);
    return std::nullopt;
  }
  if ((s.meta & kCountMask) != kUsed) s.meta = kOccupied | kUsed;
  return s.server;
}

uint16_t MemoryAffinityStore::backend_tag(std::string_view key) {
  const std::string_view backend = key.substr(0, key.find('\0'));
  uint32_t h = 2166136261u;  // FNV-1a, folded to 16 bits
  for (unsigned char c : backend) h = (h ^ c) * 16777619u;
  return static_cast<uint16_t>(h ^ (h >> 16));
}

void MemoryAffinityStore::put(std::string_view key, ServerId server, Duration ttl, TimePoint now) {
  const Fingerprint fp = fingerprint(key);
  if (shard_for(fp).capacity == 0) return;
  const int64_t now_ns = to_ns(now);
  put_fingerprint(fp, server, backend_tag(key), expiry_ns(now_ns, ttl), now_ns);
}

ServerId MemoryAffinityStore::claim(std::string_view key, ServerId server, Duration ttl, TimePoint now) {
  const Fingerprint fp = fingerprint(key);
  if (shard_for(fp).capacity == 0) return server;
  const int64_t now_ns = to_ns(now);
  ServerId existing = server;
  put_fingerprint(fp, server, backend_tag(key), expiry_ns(now_ns, ttl), now_ns, true, &existing);
  return existing;
}

bool MemoryAffinityStore::put_fingerprint(const Fingerprint& fp, ServerId server, uint16_t tag,
                                          int64_t expires, int64_t now_ns, bool only_if_absent,
                                          ServerId* existing) {
  Shard& sh = shard_for(fp);
  const size_t h = sh.home(fp.lo);
  sh.prefetch(h);
  std::lock_guard lock(sh.mu);
  __builtin_prefetch(&sh.slots[sh.sweep]);
  sh.sweep_expired(now_ns);
  const size_t i = sh.probe(fp, h);
  if (i != kNone) {
    Slot& s = sh.slots[i];
    if (only_if_absent && !expired(s.expires_ns, now_ns)) {
      if (existing) *existing = s.server;
      if ((s.meta & kCountMask) != kUsed) s.meta = kOccupied | kUsed;
      return false;
    }
    s.server = server;
    s.expires_ns = expires;
    s.meta = kOccupied | kUsed;
    s.backend_tag = tag;
    return true;
  }
  if (sh.size >= sh.capacity) sh.evict_one(now_ns);
  sh.insert(Slot{fp.lo, fp.hi, expires, server, kOccupied | kInserted, tag});
  return true;
}

void MemoryAffinityStore::refresh(std::string_view key, ServerId server, Duration ttl, TimePoint now) {
  extend(key, server, ttl, now, Duration(0));
}

bool MemoryAffinityStore::extend(std::string_view key, ServerId server, Duration ttl, TimePoint now,
                                 Duration min_step) {
  const Fingerprint fp = fingerprint(key);
  Shard& sh = shard_for(fp);
  if (sh.nslots == 0) return false;
  const size_t h = sh.home(fp.lo);
  sh.prefetch(h);
  const int64_t now_ns = to_ns(now);
  const int64_t expires = expiry_ns(now_ns, ttl);
  const int64_t step = std::chrono::duration_cast<std::chrono::nanoseconds>(min_step).count();
  std::lock_guard lock(sh.mu);
  const size_t i = sh.probe(fp, h);
  if (i == kNone) return false;
  Slot& s = sh.slots[i];
  if (expired(s.expires_ns, now_ns)) {
    sh.remove_at(i);
    return false;
  }
  if (s.server != server) return false;
  if ((s.meta & kCountMask) != kUsed) s.meta = kOccupied | kUsed;
  // expires > s.expires_ns first: the difference is then positive.
  if (expires <= s.expires_ns || expires - s.expires_ns < step) return false;
  s.expires_ns = expires;
  return true;
}

void MemoryAffinityStore::erase(std::string_view key) {
  const Fingerprint fp = fingerprint(key);
  Shard& sh = shard_for(fp);
  if (sh.nslots == 0) return;
  const size_t h = sh.home(fp.lo);
  std::lock_guard lock(sh.mu);
  const size_t i = sh.probe(fp, h);
  if (i != kNone) sh.remove_at(i);
}

std::vector<MemoryAffinityStore::SavedEntry> MemoryAffinityStore::live_entries(TimePoint now) const {
  const int64_t now_ns = to_ns(now);
  std::vector<SavedEntry> out;
  for (uint32_t k = 0; k < shard_count_; ++k) {
    Shard& sh = shards_[k];
    std::lock_guard lock(sh.mu);
    out.reserve(out.size() + sh.size);
    for (size_t i = 0; i < sh.nslots; ++i) {
      const Slot& s = sh.slots[i];
      if (s.meta == 0 || expired(s.expires_ns, now_ns)) continue;
      const int64_t left = s.expires_ns == kNoExpiry ? kNoExpiry : s.expires_ns - now_ns;
      out.push_back(SavedEntry{{s.fp_lo, s.fp_hi}, left, s.server, s.backend_tag});
    }
  }
  return out;
}

bool MemoryAffinityStore::adopt(const HashKey& key, const std::vector<SavedEntry>& entries,
                                TimePoint now) {
  if (size() != 0) return false;
  hash_key_ = key;
  merge(entries, now);
  return true;
}

size_t MemoryAffinityStore::merge(const std::vector<SavedEntry>& entries, TimePoint now) {
  const int64_t now_ns = to_ns(now);
  size_t added = 0;
  for (const SavedEntry& e : entries) {
    if (e.ttl_ns <= 0 || shard_for(e.fp).capacity == 0) continue;
    const int64_t expires =
        e.ttl_ns == kNoExpiry || now_ns > kNoExpiry - e.ttl_ns ? kNoExpiry : now_ns + e.ttl_ns;
    added += put_fingerprint(e.fp, e.server, e.backend_tag, expires, now_ns, true);
  }
  return added;
}

size_t MemoryAffinityStore::size() const {
  size_t total = 0;
  for (uint32_t i = 0; i < shard_count_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    total += shards_[i].size;
  }
  return total;
}

}  // namespace sag::affinity
