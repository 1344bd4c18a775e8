// MemoryTrim (gateway/memory_trim.h): memory freed in the middle of malloc's
// heap (what a burst of handshakes leaves) stays resident until trimmed,
// and a check below its threshold trims nothing.
#include "gateway/memory_trim.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace sag::gateway {
namespace {

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

TEST(MemoryTrim, FreedHeapPagesGoBackToTheKernel) {
  if (MemoryTrim::trim_if_worth_it(SIZE_MAX) == 0) GTEST_SKIP() << "no glibc malloc statistics (sanitizer)";
  // On a thread of its own, as a worker: its own malloc arena.
  long before = 0, freed = 0, untrimmed = 0, trimmed = 0;
  size_t free_seen = 0;
  std::thread t([&] {
    // Runs of 12 KiB freed between small blocks still in use, as
    // connections that stay open leave them: free() can't give such holes
    // back (only the heap's top, or chunks of 64 KiB and more).
    std::vector<char*> blocks, live;
    for (int i = 0; i < 4000; ++i) {
      for (int j = 0; j < 12; ++j) {
        char* p = static_cast<char*>(std::malloc(1000));
        std::memset(p, 1, 1000);  // resident
        blocks.push_back(p);
      }
      live.push_back(static_cast<char*>(std::malloc(64)));
    }
    before = rss_kib();
    for (char* p : blocks) std::free(p);
    freed = rss_kib();
    // Below its threshold it trims nothing.
    MemoryTrim::trim_if_worth_it(SIZE_MAX);
    untrimmed = rss_kib();
    free_seen = MemoryTrim::trim_if_worth_it(MemoryTrim::kThreshold);
    trimmed = rss_kib();
    for (char* p : live) std::free(p);
  });
  t.join();
  EXPECT_GT(free_seen, 30u * 1000 * 1000);
  EXPECT_GT(freed, before - 4 * 1024) << "free() alone gave the middle of the heap back";
  EXPECT_GT(untrimmed, freed - 4 * 1024) << "trimmed below the threshold";
  EXPECT_LT(trimmed, freed - 20 * 1024) << "RSS KiB " << before << " -> " << freed << " -> "
                                        << trimmed;
}

}  // namespace
}  // namespace sag::gateway
