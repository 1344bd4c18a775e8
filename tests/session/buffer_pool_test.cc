// BufferPool (session/worker_context.h): relay buffers recycled per worker,
// and what a burst left behind given back by trim() once a quiet second
// passed without reaching it.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "session/worker_context.h"

namespace sag::session {
namespace {

TEST(BufferPool, RecyclesMostRecentlyReturnedFirst) {
  BufferPool pool;
  auto a = pool.take();
  char* a_ptr = a.get();
  pool.give_back(std::move(a));
  EXPECT_EQ(pool.free_count(), 1u);
  auto b = pool.take();
  EXPECT_EQ(b.get(), a_ptr);
  EXPECT_EQ(pool.free_count(), 0u);
}

TEST(BufferPool, TrimFreesWhatABurstLeftOnceAQuietPeriodPassed) {
  BufferPool pool;
  // A burst: 40 buffers in use at once, then all given back.
  std::vector<std::unique_ptr<char[]>> burst;
  for (int i = 0; i < 40; ++i) burst.push_back(pool.take());
  for (auto& b : burst) pool.give_back(std::move(b));
  EXPECT_EQ(pool.free_count(), 40u);
  // The period of the burst: the list was empty at its low point, so
  // nothing is unused yet.
  EXPECT_EQ(pool.trim(), 0u);
  // Steady traffic of 3 at a time during the next period: 37 never reached.
  for (int round = 0; round < 5; ++round) {
    std::vector<std::unique_ptr<char[]>> in_use;
    for (int i = 0; i < 3; ++i) in_use.push_back(pool.take());
    for (auto& b : in_use) pool.give_back(std::move(b));
  }
  EXPECT_EQ(pool.trim(), 37u);
  EXPECT_EQ(pool.free_count(), 3u);
  // A quiet period: the rest goes too.
  EXPECT_EQ(pool.trim(), 3u);
  EXPECT_EQ(pool.free_count(), 0u);
  EXPECT_EQ(pool.trim(), 0u);
}

}  // namespace
}  // namespace sag::session
