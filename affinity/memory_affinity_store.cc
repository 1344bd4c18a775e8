#include "affinity/memory_affinity_store.h"

#include <bit>
#include <cstdlib>
#include <cstring>
#include <new>

#include "affinity/stable_hash.h"

namespace sag::affinity {

// One entry: header + key bytes in a single allocation.
struct MemoryAffinityStore::Node {
  Node* prev;  // towards the most recently used (the sentinel's prev is the LRU end)
  Node* next;  // towards the least recently used
  uint64_t hash;
  int64_t expires_ns;  // steady clock ns; INT64_MAX = never
  ServerId server;
  uint32_t key_len;

  char* key() { return reinterpret_cast<char*>(this + 1); }
  bool matches(uint64_t h, std::string_view k) {
    return hash == h && key_len == k.size() && std::memcmp(key(), k.data(), k.size()) == 0;
  }
  static Node* make(uint64_t h, std::string_view k) {
    void* mem = std::malloc(sizeof(Node) + k.size());
    if (!mem) throw std::bad_alloc();
    if (reinterpret_cast<uint64_t>(mem) >> 48) {  // see the index slots below
      std::free(mem);
      throw std::bad_alloc();
    }
    Node* n = static_cast<Node*>(mem);
    n->prev = n->next = nullptr;
    n->hash = h;
    n->expires_ns = 0;
    n->server = 0;
    n->key_len = static_cast<uint32_t>(k.size());
    if (!k.empty()) std::memcpy(n->key(), k.data(), k.size());
    return n;
  }
};

// Index slots pack the node's address (low 48 bits: user-space addresses on
// x86-64 and AArch64 Linux) with 16 bits of its hash, so a probe rejects
// other keys without touching their nodes (one cache miss fewer per probe).
namespace {
constexpr int kAddrBits = 48;
constexpr uint64_t kAddrMask = (uint64_t{1} << kAddrBits) - 1;
inline uint64_t tag_of(uint64_t hash) { return (hash >> 32) & 0xffff; }
}  // namespace

struct alignas(64) MemoryAffinityStore::Shard {
  std::mutex mu;
  Node lru{};  // sentinel of the circular list: lru.next = most recent
  std::vector<uint64_t> slots;  // power-of-two size; 0 = free
  size_t size = 0;
  size_t capacity = 0;

  Shard() { lru.prev = lru.next = &lru; }
  ~Shard() {
    for (Node* n = lru.next; n != &lru;) {
      Node* next = n->next;
      std::free(n);
      n = next;
    }
  }

  static Node* node(uint64_t slot) { return reinterpret_cast<Node*>(slot & kAddrMask); }
  static uint64_t pack(Node* n) {
    return reinterpret_cast<uint64_t>(n) | (tag_of(n->hash) << kAddrBits);
  }
  size_t mask() const { return slots.size() - 1; }

  // Index of the slot holding the key, or of the free slot ending its probe.
  size_t probe(uint64_t h, std::string_view k) const {
    const uint64_t tag = tag_of(h) << kAddrBits;
    size_t i = h & mask();
    for (;;) {
      const uint64_t s = slots[i];
      if (s == 0) return i;
      if ((s & ~kAddrMask) == tag && node(s)->matches(h, k)) return i;
      i = (i + 1) & mask();
    }
  }

  void unlink(Node* n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
  }
  void push_front(Node* n) {
    n->prev = &lru;
    n->next = lru.next;
    lru.next->prev = n;
    lru.next = n;
  }
  void touch(Node* n) {
    if (lru.next == n) return;
    unlink(n);
    push_front(n);
  }

  // Backward-shift deletion of slot i (no tombstones, so probes stay short).
  void clear_slot(size_t i) {
    const size_t m = mask();
    size_t j = i;
    for (;;) {
      j = (j + 1) & m;
      const uint64_t s = slots[j];
      if (s == 0) break;
      const size_t home = node(s)->hash & m;
      // Move the entry back to i unless its home lies cyclically in (i, j].
      const bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
      if (!stays) {
        slots[i] = s;
        i = j;
      }
    }
    slots[i] = 0;
  }

  void drop(size_t slot, Node* n) {
    clear_slot(slot);
    unlink(n);
    std::free(n);
    --size;
  }
  void remove(Node* n) { drop(probe(n->hash, std::string_view(n->key(), n->key_len)), n); }

  void grow() {
    std::vector<uint64_t> old(slots.size() * 2, 0);
    old.swap(slots);
    const size_t m = mask();
    for (uint64_t s : old) {
      if (s == 0) continue;
      size_t i = node(s)->hash & m;
      while (slots[i]) i = (i + 1) & m;
      slots[i] = s;
    }
  }
};

namespace {

constexpr size_t kInitialSlots = 16;
constexpr int kReapPerPut = 2;

int64_t to_ns(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

bool expired(int64_t expires_ns, int64_t now_ns) { return now_ns >= expires_ns; }

}  // namespace

MemoryAffinityStore::MemoryAffinityStore(uint64_t capacity, uint32_t shards)
    : capacity_(capacity) {
  uint64_t n = shards == 0 ? 1 : std::bit_floor(static_cast<uint64_t>(shards));
  while (n > 1 && n > capacity) n /= 2;
  shard_count_ = static_cast<uint32_t>(n);
  shard_shift_ = 64 - std::countr_zero(n);
  shards_ = std::make_unique<Shard[]>(shard_count_);
  for (uint32_t i = 0; i < shard_count_; ++i) {
    shards_[i].capacity = capacity / n + (i < capacity % n ? 1 : 0);
    shards_[i].slots.assign(kInitialSlots, 0);
  }
}

MemoryAffinityStore::~MemoryAffinityStore() = default;

MemoryAffinityStore::Shard& MemoryAffinityStore::shard_for(uint64_t hash) const {
  return shards_[shard_shift_ >= 64 ? 0 : hash >> shard_shift_];
}

std::optional<ServerId> MemoryAffinityStore::find(std::string_view key, TimePoint now) {
  const uint64_t h = stable_hash64(key);
  Shard& sh = shard_for(h);
  std::lock_guard lock(sh.mu);
  const size_t i = sh.probe(h, key);
  if (sh.slots[i] == 0) return std::nullopt;
  Node* n = Shard::node(sh.slots[i]);
  if (expired(n->expires_ns, to_ns(now))) {
    sh.drop(i, n);
    return std::nullopt;
  }
  sh.touch(n);
  return n->server;
}

void MemoryAffinityStore::put(std::string_view key, ServerId server, Duration ttl, TimePoint now) {
  const uint64_t h = stable_hash64(key);
  Shard& sh = shard_for(h);
  const int64_t now_ns = to_ns(now);
  const int64_t ttl_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(ttl).count();
  const int64_t expires =
      ttl_ns <= 0 || now_ns > INT64_MAX - ttl_ns ? INT64_MAX : now_ns + ttl_ns;
  std::lock_guard lock(sh.mu);
  if (sh.capacity == 0) return;
  size_t i = sh.probe(h, key);
  if (sh.slots[i] != 0) {
    Node* n = Shard::node(sh.slots[i]);
    n->server = server;
    n->expires_ns = expires;
    sh.touch(n);
    return;
  }
  // Drop a few expired entries from the cold end, then make room.
  bool changed = false;
  for (int k = 0; k < kReapPerPut && sh.lru.prev != &sh.lru; ++k) {
    Node* tail = sh.lru.prev;
    if (!expired(tail->expires_ns, now_ns)) break;
    sh.remove(tail);
    changed = true;
  }
  if (sh.size >= sh.capacity) {
    sh.remove(sh.lru.prev);
    changed = true;
  }
  if ((sh.size + 1) * 5 > sh.slots.size() * 3) {  // load would pass 0.6
    sh.grow();
    changed = true;
  }
  if (changed) i = sh.probe(h, key);
  Node* n = Node::make(h, key);
  n->server = server;
  n->expires_ns = expires;
  sh.slots[i] = Shard::pack(n);
  sh.push_front(n);
  ++sh.size;
}

void MemoryAffinityStore::erase(std::string_view key) {
  const uint64_t h = stable_hash64(key);
  Shard& sh = shard_for(h);
  std::lock_guard lock(sh.mu);
  const size_t i = sh.probe(h, key);
  if (sh.slots[i] != 0) sh.drop(i, Shard::node(sh.slots[i]));
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
