#include "config/base/coarse_clock.h"

#include <chrono>

#include <gtest/gtest.h>

namespace sag::base {
namespace {

using std::chrono::steady_clock;

TEST(CoarseClock, NeverAheadOfTheFineClockAndAtMostATickBehind) {
  const auto res = coarse_resolution();
  EXPECT_GT(res, steady_clock::duration::zero());
  EXPECT_LE(res, std::chrono::milliseconds(100));
  for (int i = 0; i < 1000; ++i) {
    const auto before = steady_clock::now();
    const auto coarse = coarse_steady_now();
    const auto after = steady_clock::now();
    EXPECT_LE(coarse, after);
    // One tick behind, and some slack for a preemption between the reads.
    EXPECT_GE(coarse, before - res - std::chrono::milliseconds(50));
  }
}

TEST(CoarseClock, UnixSecondsFollowTheWallClock) {
  const auto wall = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  const int64_t coarse = coarse_unix_seconds();
  EXPECT_LE(coarse, wall + 1);
  EXPECT_GE(coarse, wall - 1);
}

}  // namespace
}  // namespace sag::base
