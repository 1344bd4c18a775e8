// BlockCache / PoolAllocator (config/base/block_cache.h): blocks are
// recycled per thread, size classes hold what was asked, large blocks
// bypass the cache, and containers work with the allocator.
#include "config/base/block_cache.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <thread>
#include <vector>

namespace sag::base {
namespace {

TEST(BlockCache, RecyclesBlocksOfTheSameClass) {
  if (!BlockCache::kCaching) GTEST_SKIP() << "no caching under AddressSanitizer";
  void* a = BlockCache::take(100);
  std::memset(a, 0xab, 100);
  BlockCache::give(a, 100);
  void* b = BlockCache::take(120);  // same 128-byte class
  EXPECT_EQ(a, b);
  BlockCache::give(b, 120);
  void* c = BlockCache::take(40);  // another class
  EXPECT_NE(a, c);
  BlockCache::give(c, 40);
}

TEST(BlockCache, ClassesHoldWhatWasAsked) {
  std::vector<std::pair<void*, size_t>> held;
  for (size_t n : {1u, 63u, 64u, 65u, 500u, 1024u, 1025u, 2048u, 2049u, 4096u}) {
    void* p = BlockCache::take(n);
    std::memset(p, 1, n);  // ASan checks the block is as large as asked
    held.emplace_back(p, n);
  }
  std::set<void*> distinct;
  for (auto& [p, n] : held) distinct.insert(p);
  EXPECT_EQ(distinct.size(), held.size());
  for (auto& [p, n] : held) BlockCache::give(p, n);
}

TEST(BlockCache, OutstandingCountsThisThread) {
  if (!BlockCache::kCaching) GTEST_SKIP() << "no caching under AddressSanitizer";
  const long before = BlockCache::outstanding();
  void* p = BlockCache::take(64);
  EXPECT_EQ(BlockCache::outstanding(), before + 1);
  BlockCache::give(p, 64);
  EXPECT_EQ(BlockCache::outstanding(), before);
}

TEST(BlockCache, BlocksMayCrossThreads) {
  if (!BlockCache::kCaching) GTEST_SKIP() << "no caching under AddressSanitizer";
  void* p = BlockCache::take(256);
  std::thread t([p] {
    BlockCache::give(p, 256);  // joins this thread's cache, freed at its exit
    void* q = BlockCache::take(256);
    EXPECT_EQ(q, p);
    BlockCache::give(q, 256);
  });
  t.join();
}

TEST(BlockCache, TrimFreesOnlyWhatAQuietPeriodLeftUnused) {
  if (!BlockCache::kCaching) GTEST_SKIP() << "no caching under AddressSanitizer";
  std::thread t([] {  // a fresh thread: an empty cache
    std::vector<void*> burst;
    for (int i = 0; i < 100; ++i) burst.push_back(BlockCache::take(2048));
    for (void* p : burst) BlockCache::give(p, 2048);
    EXPECT_EQ(BlockCache::cached_bytes(), 100u * 2048);
    BlockCache::trim();  // the burst's period: every block was in use
    EXPECT_EQ(BlockCache::cached_bytes(), 100u * 2048);
    // A steady load of 10 blocks at a time: the other 90 sit unused.
    for (int round = 0; round < 5; ++round) {
      std::vector<void*> held;
      for (int i = 0; i < 10; ++i) held.push_back(BlockCache::take(2048));
      for (void* p : held) BlockCache::give(p, 2048);
    }
    EXPECT_EQ(BlockCache::trim(), 90u * 2048);
    EXPECT_EQ(BlockCache::cached_bytes(), 10u * 2048);
    // Blocks still recycle after a trim, and a quiet period frees the rest.
    void* p = BlockCache::take(2048);
    BlockCache::give(p, 2048);
    BlockCache::trim();  // 9 of the 10 stayed unused
    EXPECT_EQ(BlockCache::cached_bytes(), 1u * 2048);
    BlockCache::trim();
    EXPECT_EQ(BlockCache::cached_bytes(), 0u);
    EXPECT_EQ(BlockCache::outstanding(), 0);
  });
  t.join();
}

TEST(BlockCache, CapsWhatOneClassKeeps) {
  if (!BlockCache::kCaching) GTEST_SKIP() << "no caching under AddressSanitizer";
  std::thread t([] {
    const size_t n = BlockCache::kMaxCachedBytes / 4096 + 50;
    std::vector<void*> burst;
    for (size_t i = 0; i < n; ++i) burst.push_back(BlockCache::take(4096));
    for (void* p : burst) BlockCache::give(p, 4096);
    EXPECT_EQ(BlockCache::cached_bytes(), BlockCache::kMaxCachedBytes);
  });
  t.join();
}

TEST(PoolAllocator, WorksInContainersAndForLargeArrays) {
  std::vector<int, PoolAllocator<int>> v;
  for (int i = 0; i < 10000; ++i) v.push_back(i);  // grows past kMaxBlock
  EXPECT_EQ(v[9999], 9999);
  std::basic_string<char, std::char_traits<char>, PoolAllocator<char>> s(300, 'x');
  s += s;
  EXPECT_EQ(s.size(), 600u);
  EXPECT_TRUE(PoolAllocator<int>() == PoolAllocator<char>());
}

}  // namespace
}  // namespace sag::base
