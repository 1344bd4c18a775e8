// The in-process affinity store (affinity/memory_affinity_store.h).
#include "affinity/memory_affinity_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "affinity/fast_rng.h"
#include "affinity/stable_hash.h"

namespace sag::affinity {
namespace {

using namespace std::chrono_literals;

TimePoint at_ms(int64_t ms) { return TimePoint(std::chrono::hours(1000)) + std::chrono::milliseconds(ms); }

constexpr Duration kLong = std::chrono::hours(1);

TEST(MemoryStore, PutFindErase) {
  MemoryAffinityStore st(100);
  EXPECT_EQ(st.find("a", at_ms(0)), std::nullopt);
  st.put("a", 3, kLong, at_ms(0));
  st.put(std::string_view("app\0learn\0x", 11), 4, kLong, at_ms(0));
  st.put(std::string_view("app\0learn\0y", 11), 5, kLong, at_ms(0));
  EXPECT_EQ(st.find("a", at_ms(1)), 3u);
  EXPECT_EQ(st.find(std::string_view("app\0learn\0x", 11), at_ms(1)), 4u);
  EXPECT_EQ(st.find(std::string_view("app\0learn\0y", 11), at_ms(1)), 5u);
  EXPECT_EQ(st.find("app", at_ms(1)), std::nullopt);
  EXPECT_EQ(st.size(), 3u);
  st.put("a", 7, kLong, at_ms(2));  // update in place
  EXPECT_EQ(st.find("a", at_ms(3)), 7u);
  EXPECT_EQ(st.size(), 3u);
  st.erase("a");
  st.erase("never there");
  EXPECT_EQ(st.find("a", at_ms(4)), std::nullopt);
  EXPECT_EQ(st.size(), 2u);
  const std::string long_key(5000, 'k');
  st.put(long_key, 9, kLong, at_ms(0));
  st.put("", 10, kLong, at_ms(0));
  EXPECT_EQ(st.find(long_key, at_ms(1)), 9u);
  EXPECT_EQ(st.find("", at_ms(1)), 10u);
}

TEST(MemoryStore, TtlExpiryWithInjectedTime) {
  MemoryAffinityStore st(100);
  st.put("k", 1, 10s, at_ms(0));
  EXPECT_EQ(st.find("k", at_ms(9999)), 1u);
  EXPECT_EQ(st.size(), 1u);
  EXPECT_EQ(st.find("k", at_ms(10000)), std::nullopt);  // expires at now + ttl
  EXPECT_EQ(st.size(), 0u);                             // dropped by the find
  // A find does not extend the TTL; a put does.
  st.put("k", 2, 10s, at_ms(20000));
  EXPECT_EQ(st.find("k", at_ms(29000)), 2u);
  st.put("k", 2, 10s, at_ms(29000));
  EXPECT_EQ(st.find("k", at_ms(38000)), 2u);
  EXPECT_EQ(st.find("k", at_ms(39000)), std::nullopt);
  // ttl 0: no expiry.
  st.put("forever", 3, 0s, at_ms(0));
  EXPECT_EQ(st.find("forever", at_ms(int64_t{1} << 40)), 3u);
}

TEST(MemoryStore, PutReapsAFewExpiredEntries) {
  MemoryAffinityStore st(100, 1);
  for (int i = 0; i < 5; ++i) st.put("old" + std::to_string(i), i, 1s, at_ms(0));
  st.put("fresh0", 9, kLong, at_ms(500));
  EXPECT_EQ(st.size(), 6u);
  st.put("fresh1", 9, kLong, at_ms(2000));  // drops 2 expired from the cold end
  EXPECT_EQ(st.size(), 5u);
  st.put("fresh2", 9, kLong, at_ms(2000));
  EXPECT_EQ(st.size(), 4u);
  st.put("fresh3", 9, kLong, at_ms(2000));  // old4 went; fresh0 is not expired
  EXPECT_EQ(st.size(), 4u);
  st.put("fresh4", 9, kLong, at_ms(2000));
  EXPECT_EQ(st.size(), 5u);
  EXPECT_EQ(st.find("fresh0", at_ms(2000)), 9u);
}

TEST(MemoryStore, LruEvictionOrderAtCapacity) {
  MemoryAffinityStore st(3, 1);
  st.put("a", 1, kLong, at_ms(0));
  st.put("b", 2, kLong, at_ms(0));
  st.put("c", 3, kLong, at_ms(0));
  EXPECT_EQ(st.find("a", at_ms(1)), 1u);  // oldest first: b, c, a
  st.put("d", 4, kLong, at_ms(2));         // evicts b
  EXPECT_EQ(st.size(), 3u);
  EXPECT_EQ(st.find("b", at_ms(3)), std::nullopt);
  // Order now (oldest first): c, a, d.
  st.put("e", 5, kLong, at_ms(4));  // evicts c
  EXPECT_EQ(st.find("c", at_ms(5)), std::nullopt);
  EXPECT_EQ(st.find("d", at_ms(5)), 4u);  // order: a, e, d
  EXPECT_EQ(st.find("a", at_ms(5)), 1u);  // order: e, d, a
  st.put("f", 6, kLong, at_ms(6));         // evicts e
  EXPECT_EQ(st.find("e", at_ms(7)), std::nullopt);
  EXPECT_EQ(st.find("d", at_ms(7)), 4u);
  EXPECT_EQ(st.find("a", at_ms(7)), 1u);
  EXPECT_EQ(st.find("f", at_ms(7)), 6u);
}

TEST(MemoryStore, UpdateRefreshesRecency) {
  MemoryAffinityStore st(3, 1);
  st.put("a", 1, kLong, at_ms(0));
  st.put("b", 2, kLong, at_ms(0));
  st.put("c", 3, kLong, at_ms(0));
  st.put("a", 11, kLong, at_ms(1));  // update: a becomes the most recent
  st.put("d", 4, kLong, at_ms(2));   // evicts b
  EXPECT_EQ(st.find("a", at_ms(3)), 11u);
  EXPECT_EQ(st.find("b", at_ms(3)), std::nullopt);
  EXPECT_EQ(st.find("c", at_ms(3)), 3u);
  EXPECT_EQ(st.find("d", at_ms(3)), 4u);
}

TEST(MemoryStore, ExpiredEntriesGoBeforeLiveOnes) {
  MemoryAffinityStore st(3, 1);
  st.put("live_old", 1, kLong, at_ms(0));
  st.put("short", 2, 1s, at_ms(0));
  st.put("live_new", 3, kLong, at_ms(0));
  EXPECT_EQ(st.find("live_old", at_ms(1)), 1u);  // LRU order: short, live_new, live_old
  st.put("x", 4, kLong, at_ms(5000));            // short is expired: reaped, nothing live evicted
  EXPECT_EQ(st.size(), 3u);
  EXPECT_EQ(st.find("live_old", at_ms(5000)), 1u);
  EXPECT_EQ(st.find("live_new", at_ms(5000)), 3u);
  EXPECT_EQ(st.find("x", at_ms(5000)), 4u);
}

TEST(MemoryStore, CapacityBoundAcrossShards) {
  MemoryAffinityStore st(6400);
  EXPECT_EQ(st.shard_count(), 64u);
  for (int i = 0; i < 100000; ++i) st.put("key" + std::to_string(i), i % 50, kLong, at_ms(0));
  EXPECT_EQ(st.size(), 6400u);  // every shard full at its 100
  int found = 0;
  for (int i = 0; i < 100000; ++i) {
    auto v = st.find("key" + std::to_string(i), at_ms(1));
    if (v) {
      ++found;
      ASSERT_EQ(*v, static_cast<ServerId>(i % 50));
    }
  }
  EXPECT_EQ(found, 6400);
  // The most recent key of all is certainly held.
  EXPECT_EQ(st.find("key99999", at_ms(2)), 99999u % 50);
}

TEST(MemoryStore, SmallCapacityUsesFewerShards) {
  MemoryAffinityStore st(10);
  EXPECT_EQ(st.shard_count(), 8u);
  for (int i = 0; i < 1000; ++i) st.put("k" + std::to_string(i), 1, kLong, at_ms(0));
  EXPECT_EQ(st.size(), 10u);
  MemoryAffinityStore none(0);
  none.put("k", 1, kLong, at_ms(0));
  EXPECT_EQ(none.size(), 0u);
  EXPECT_EQ(none.find("k", at_ms(0)), std::nullopt);
}

TEST(MemoryStore, ManyInsertsAndErasesKeepIndexConsistent) {
  // Exercises index growth and backward-shift deletion against a model.
  MemoryAffinityStore st(1 << 20, 1);
  std::map<std::string, ServerId> model;
  FastRng rng(5);
  for (int i = 0; i < 200000; ++i) {
    const std::string k = "k" + std::to_string(rng.below(20000));
    switch (rng.below(3)) {
      case 0:
      case 1: {
        const auto v = static_cast<ServerId>(rng.below(1000));
        st.put(k, v, kLong, at_ms(0));
        model[k] = v;
        break;
      }
      case 2:
        st.erase(k);
        model.erase(k);
        break;
    }
  }
  EXPECT_EQ(st.size(), model.size());
  for (int i = 0; i < 20000; ++i) {
    const std::string k = "k" + std::to_string(i);
    auto it = model.find(k);
    auto v = st.find(k, at_ms(1));
    if (it == model.end()) {
      ASSERT_EQ(v, std::nullopt) << k;
    } else {
      ASSERT_EQ(v, it->second) << k;
    }
  }
}

TEST(MemoryStore, ConcurrentFindPutEraseFromFourThreads) {
  // Each key always maps to the same value, whoever writes it, so any hit
  // must return that value. Capacity below the key space forces eviction.
  constexpr int kKeySpace = 20000;
  MemoryAffinityStore st(4096);
  auto value_of = [](uint64_t k) { return static_cast<ServerId>(mix64(k) % 1000); };
  std::atomic<bool> stop{false};
  std::atomic<long> hits{0}, bad{0}, ops{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      FastRng rng(100 + t);
      std::string key;
      long n = 0;
      while (!stop.load(std::memory_order_relaxed) && n < 2'000'000) {
        const uint64_t k = rng.below(kKeySpace);
        key = "app";
        key.push_back('\0');
        key += std::to_string(k);
        const auto now = at_ms(static_cast<int64_t>(n / 1000));
        const uint64_t op = rng.below(10);
        if (op < 6) {
          if (auto v = st.find(key, now)) {
            hits.fetch_add(1, std::memory_order_relaxed);
            if (*v != value_of(k)) bad.fetch_add(1, std::memory_order_relaxed);
          }
        } else if (op < 9) {
          st.put(key, value_of(k), 60s, now);
        } else {
          st.erase(key);
        }
        ++n;
      }
      ops.fetch_add(n);
    });
  }
  std::this_thread::sleep_for(300ms);
  stop = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(hits.load(), 0);
  EXPECT_GT(ops.load(), 1000);
  EXPECT_LE(st.size(), 4096u);
  // Afterwards every held key still has its value.
  size_t held = 0;
  for (int k = 0; k < kKeySpace; ++k) {
    std::string key = "app";
    key.push_back('\0');
    key += std::to_string(k);
    if (auto v = st.find(key, at_ms(0))) {
      ++held;
      ASSERT_EQ(*v, value_of(k));
    }
  }
  EXPECT_EQ(held, st.size());
}

}  // namespace
}  // namespace sag::affinity
