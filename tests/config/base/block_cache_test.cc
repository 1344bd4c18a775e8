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
