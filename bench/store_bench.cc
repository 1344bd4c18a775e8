// MemoryAffinityStore on one core: lookups/s for hits with 1M entries, and
// the memory an entry costs (the store's slot table over the entries held
// and over its capacity; the heap and RSS growth over the fill as checks).
// Built with -DSAG_BENCH=ON as sag_bench_store; see bench/README.md.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "affinity/balance/fast_rng.h"
#include "affinity/store/memory_affinity_store.h"
#include "affinity/balance/stable_hash.h"

namespace {

using sag::affinity::MemoryAffinityStore;
using sag::affinity::TimePoint;

constexpr size_t kEntries = 1'000'000;
// A learned session key as the resolver builds it: "<backend>\0<kind>\0<value>"
// with a 32-hex-digit session id: 42 bytes.
constexpr size_t kKeyLen = 3 + 1 + 5 + 1 + 32;

void write_key(char* out, uint64_t i) {
  static const char hex[] = "0123456789abcdef";
  std::memcpy(out, "app\0learn\0", 10);
  const uint64_t a = sag::affinity::mix64(i), b = sag::affinity::mix64(~i);
  for (int k = 0; k < 16; ++k) out[10 + k] = hex[(a >> (4 * k)) & 15];
  for (int k = 0; k < 16; ++k) out[26 + k] = hex[(b >> (4 * k)) & 15];
}

size_t heap_in_use() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

// Resident set size in bytes (/proc/self/statm, second field, in pages).
size_t rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

struct Fixture {
  std::unique_ptr<MemoryAffinityStore> store;
  std::vector<char> present;  // keys in the store, in shuffled order, back to back
  std::vector<char> absent;   // keys never stored
  TimePoint now;
  double bytes_per_entry = 0;     // table bytes / entries held (full load)
  double bytes_per_capacity = 0;  // table bytes / capacity
  double heap_per_entry = 0;      // malloc'd bytes over the fill / entries
  double rss_per_entry = 0;       // RSS growth over construction + fill / entries
};

Fixture& fixture() {
  static Fixture f = [] {
    Fixture f;
    f.now = TimePoint(std::chrono::hours(1000));
    std::vector<char> keys(kEntries * kKeyLen);
    for (size_t i = 0; i < kEntries; ++i) write_key(&keys[i * kKeyLen], i);
    const size_t before = heap_in_use();
    const size_t rss_before = rss_bytes();
    // Shards hold capacity/64 each and keys do not split exactly evenly, so
    // leave 5% room: every key stays (the bench checks each lookup hits).
    f.store = std::make_unique<MemoryAffinityStore>(kEntries + kEntries / 20);
    for (size_t i = 0; i < kEntries; ++i)
      f.store->put(std::string_view(&keys[i * kKeyLen], kKeyLen), static_cast<uint32_t>(i % 7),
                   std::chrono::minutes(30), f.now);
    const size_t after = heap_in_use();
    const size_t rss_after = rss_bytes();
    const auto entries = static_cast<double>(f.store->size());
    f.bytes_per_entry = static_cast<double>(f.store->memory_bytes()) / entries;
    f.bytes_per_capacity =
        static_cast<double>(f.store->memory_bytes()) / static_cast<double>(f.store->capacity());
    f.heap_per_entry = (static_cast<double>(after) - static_cast<double>(before)) / entries;
    f.rss_per_entry = (static_cast<double>(rss_after) - static_cast<double>(rss_before)) / entries;
    // Look keys up in an order unrelated to insertion (and to memory layout).
    std::vector<uint32_t> order(kEntries);
    std::iota(order.begin(), order.end(), 0);
    sag::affinity::FastRng rng(42);
    for (size_t i = kEntries - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
    f.present.resize(kEntries * kKeyLen);
    for (size_t i = 0; i < kEntries; ++i)
      std::memcpy(&f.present[i * kKeyLen], &keys[order[i] * kKeyLen], kKeyLen);
    f.absent.resize(kEntries * kKeyLen);
    for (size_t i = 0; i < kEntries; ++i) write_key(&f.absent[i * kKeyLen], i + kEntries * 7);
    return f;
  }();
  return f;
}

void BM_FindHit(benchmark::State& state) {
  Fixture& f = fixture();
  size_t i = 0, found = 0;
  for (auto _ : state) {
    auto r = f.store->find(std::string_view(&f.present[i * kKeyLen], kKeyLen), f.now);
    found += r.has_value();
    benchmark::DoNotOptimize(r);
    if (++i == kEntries) i = 0;
  }
  if (found != static_cast<size_t>(state.iterations())) state.SkipWithError("a lookup missed");
  state.counters["lookups_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                       benchmark::Counter::kIsRate);
  state.counters["entries"] = static_cast<double>(f.store->size());
  state.counters["bytes_per_entry"] = f.bytes_per_entry;
  state.counters["bytes_per_capacity"] = f.bytes_per_capacity;
  state.counters["heap_per_entry"] = f.heap_per_entry;
  state.counters["rss_per_entry"] = f.rss_per_entry;
  state.counters["key_bytes"] = static_cast<double>(kKeyLen);  // not stored
}
BENCHMARK(BM_FindHit)->MinTime(2.0);

// Hits on a hot subset (the first `range` keys of the shuffled order), the
// store still holding 1M entries: the CPU cost of a lookup once the entries
// a worker keeps hitting are in cache, as with real, skewed traffic.
void BM_FindHitHot(benchmark::State& state) {
  Fixture& f = fixture();
  const size_t hot = static_cast<size_t>(state.range(0));
  size_t i = 0, found = 0;
  for (auto _ : state) {
    auto r = f.store->find(std::string_view(&f.present[i * kKeyLen], kKeyLen), f.now);
    found += r.has_value();
    benchmark::DoNotOptimize(r);
    if (++i == hot) i = 0;
  }
  if (found != static_cast<size_t>(state.iterations())) state.SkipWithError("a lookup missed");
  state.counters["lookups_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                       benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FindHitHot)->Arg(1000)->Arg(10000)->Arg(100000)->MinTime(1.0);

void BM_FindMiss(benchmark::State& state) {
  Fixture& f = fixture();
  size_t i = 0;
  for (auto _ : state) {
    auto r = f.store->find(std::string_view(&f.absent[i * kKeyLen], kKeyLen), f.now);
    benchmark::DoNotOptimize(r);
    if (++i == kEntries) i = 0;
  }
  state.counters["lookups_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                       benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FindMiss)->MinTime(1.0);

// Re-put of existing keys (the refresh the resolver does on a hit).
void BM_PutUpdate(benchmark::State& state) {
  Fixture& f = fixture();
  size_t i = 0;
  for (auto _ : state) {
    f.store->put(std::string_view(&f.present[i * kKeyLen], kKeyLen), 3, std::chrono::minutes(30),
                 f.now);
    if (++i == kEntries) i = 0;
  }
  state.counters["puts_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                    benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PutUpdate)->MinTime(1.0);

// The fingerprint alone (SipHash-2-4-128 of a 42-byte key): the CPU part of
// every call.
void BM_Fingerprint(benchmark::State& state) {
  Fixture& f = fixture();
  const MemoryAffinityStore::HashKey key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
  size_t i = 0;
  for (auto _ : state) {
    auto fp = MemoryAffinityStore::siphash128(std::string_view(&f.present[i * kKeyLen], kKeyLen), key);
    benchmark::DoNotOptimize(fp);
    if (++i == kEntries) i = 0;
  }
  state.counters["hashes_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                      benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Fingerprint)->MinTime(0.5);

// Puts of new keys into the full store: each inserts and evicts one entry
// (CLOCK). Registered last: it replaces the entries the benchmarks above hit.
void BM_PutNewEvicting(benchmark::State& state) {
  Fixture& f = fixture();
  uint64_t serial = uint64_t{1} << 40;
  char key[kKeyLen];
  for (auto _ : state) {
    write_key(key, serial++);
    f.store->put(std::string_view(key, kKeyLen), 3, std::chrono::minutes(30), f.now);
  }
  state.counters["puts_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                    benchmark::Counter::kIsRate);
  state.counters["entries"] = static_cast<double>(f.store->size());
}
BENCHMARK(BM_PutNewEvicting)->MinTime(1.0);

}  // namespace

BENCHMARK_MAIN();
