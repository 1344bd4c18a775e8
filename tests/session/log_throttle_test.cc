// LogThrottle: one message per period, what it holds back is counted in the
// next one, and it holds under threads.
#include "session/log_throttle.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace sag::session {
namespace {

using namespace std::chrono_literals;
using Clock = LogThrottle::Clock;

TEST(LogThrottleTest, FirstEventThenOncePerPeriod) {
  LogThrottle t(60s);
  const Clock::time_point t0{};  // the clock's epoch: no special case
  uint64_t held = 99;
  EXPECT_TRUE(t.allow(t0, &held));
  EXPECT_EQ(held, 0u);
  EXPECT_FALSE(t.allow(t0));
  EXPECT_FALSE(t.allow(t0 + 1s));
  EXPECT_FALSE(t.allow(t0 + 59s));
  EXPECT_FALSE(t.allow(t0 + 60s - 1ns));
  EXPECT_TRUE(t.allow(t0 + 60s, &held));
  EXPECT_EQ(held, 4u);  // the four held back since the first
  // The period runs from the last message let through, not a fixed grid.
  EXPECT_FALSE(t.allow(t0 + 119s));
  EXPECT_TRUE(t.allow(t0 + 120s, &held));
  EXPECT_EQ(held, 1u);
  // A long quiet time: the next event goes through at once.
  EXPECT_TRUE(t.allow(t0 + 10h, &held));
  EXPECT_EQ(held, 0u);
}

TEST(LogThrottleTest, DefaultPeriodIsAMinute) {
  LogThrottle t;
  const auto t0 = Clock::now();
  EXPECT_TRUE(t.allow(t0));
  EXPECT_FALSE(t.allow(t0 + 59s));
  EXPECT_TRUE(t.allow(t0 + 60s));
}

TEST(LogThrottleTest, TimeGoingBackLetsNothingMoreThrough) {
  LogThrottle t(60s);
  const auto t0 = Clock::now();
  EXPECT_TRUE(t.allow(t0));
  EXPECT_FALSE(t.allow(t0 - 5s));
  EXPECT_FALSE(t.allow(t0 - 1h));
  uint64_t held = 0;
  EXPECT_TRUE(t.allow(t0 + 60s, &held));
  EXPECT_EQ(held, 2u);
}

TEST(LogThrottleTest, SharedByThreadsOneMessageAndEveryEventCounted) {
  LogThrottle t(60s);
  const auto t0 = Clock::now();
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i)
        if (t.allow(t0 + std::chrono::milliseconds(i))) allowed.fetch_add(1);
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(allowed.load(), 1);
  uint64_t held = 0;
  EXPECT_TRUE(t.allow(t0 + 61s, &held));
  EXPECT_EQ(held, 4u * 10000u - 1u);
}

}  // namespace
}  // namespace sag::session
