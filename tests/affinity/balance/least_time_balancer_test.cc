// least_time: power of two choices over response time
// (affinity/balance/least_time_balancer.h).
#include "affinity/balance/least_time_balancer.h"

#include <gtest/gtest.h>

#include "tests/affinity/balance/balancer_test_support.h"

namespace sag::affinity {
namespace {

using namespace std::chrono_literals;
using testing::count;
using testing::make_backend;
using testing::pick_names;

constexpr int kPicks = 100000;

double share(std::map<std::string, int>& m, const char* name) {
  return static_cast<double>(m[name]) / kPicks;
}

TEST(LeastTime, PrefersFasterButStillProbesSlower) {
  auto b = make_backend({{"fast"}, {"slow"}});
  b->find_server("fast")->record_response_time(100us);
  b->find_server("slow")->record_response_time(1000us);
  LeastTimeBalancer lt(b->servers(), 0ms, 1);
  auto m = count(lt, kPicks);
  // slow wins only when both candidates are slow: 1/4 of the picks, so its
  // average keeps being measured.
  EXPECT_NEAR(share(m, "fast"), 0.75, 0.01);
  EXPECT_NEAR(share(m, "slow"), 0.25, 0.01);
}

TEST(LeastTime, UnmeasuredServerCountsAsBest) {
  auto b = make_backend({{"a"}, {"b"}, {"new"}});
  b->find_server("a")->record_response_time(100us);
  b->find_server("b")->record_response_time(100us);
  LeastTimeBalancer lt(b->servers(), 0ms, 2);
  auto m = count(lt, kPicks);
  // new wins whenever drawn: 1 - (2/3)^2 = 5/9.
  EXPECT_NEAR(share(m, "new"), 5.0 / 9, 0.01);
  EXPECT_NEAR(share(m, "a"), 2.0 / 9, 0.01);
  EXPECT_NEAR(share(m, "b"), 2.0 / 9, 0.01);
}

TEST(LeastTime, RequestsInFlightPenalised) {
  auto b = make_backend({{"quick_busy"}, {"slow_idle"}});
  b->find_server("quick_busy")->record_response_time(100us);
  b->find_server("slow_idle")->record_response_time(500us);
  LeastTimeBalancer lt(b->servers(), 0ms, 3);
  // 101 * 1 < 501 * 1: quick wins.
  auto first = count(lt, kPicks);
  EXPECT_NEAR(share(first, "quick_busy"), 0.75, 0.01);
  // 101 * 21 > 501 * 1: slow_idle wins now.
  for (int i = 0; i < 20; ++i) b->find_server("quick_busy")->request_started();
  auto m = count(lt, kPicks);
  EXPECT_NEAR(share(m, "slow_idle"), 0.75, 0.01);
}

TEST(LeastTime, EqualScoresFollowWeights) {
  auto b = make_backend({{"heavy", 300}, {"light", 100}});
  b->find_server("heavy")->record_response_time(200us);
  b->find_server("light")->record_response_time(200us);
  LeastTimeBalancer lt(b->servers(), 0ms, 4);
  auto m = count(lt, kPicks);
  // Score = ewma * (active + 1) / weight: heavy scores lower; light wins only
  // when drawn twice (1/16).
  EXPECT_NEAR(share(m, "light"), 1.0 / 16, 0.005);
}

TEST(LeastTime, DeterministicPerSeedAndSkipsExcluded) {
  auto b = make_backend({{"a"}, {"b"}, {"c"}});
  LeastTimeBalancer l1(b->servers(), 0ms, 9), l2(b->servers(), 0ms, 9);
  EXPECT_EQ(pick_names(l1, 30), pick_names(l2, 30));
  const uint32_t ex[] = {2, 0};
  EXPECT_EQ(count(l1, 100, SelectContext{ex}), (std::map<std::string, int>{{"b", 100}}));
  b->find_server("b")->set_healthy(false);
  EXPECT_EQ(l1.select(SelectContext{ex}), nullptr);
}

}  // namespace
}  // namespace sag::affinity
