// random: power of two choices (affinity/balance/random_balancer.h).
#include "affinity/balance/random_balancer.h"

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

TEST(RandomP2C, IdleFollowsWeights) {
  auto b = make_backend({{"a", 300}, {"b", 100}, {"c", 100}});
  RandomBalancer rb(b->servers(), 0ms, 1);
  auto m = count(rb, kPicks);
  EXPECT_NEAR(share(m, "a"), 0.6, 0.01);
  EXPECT_NEAR(share(m, "b"), 0.2, 0.01);
  EXPECT_NEAR(share(m, "c"), 0.2, 0.01);
  EXPECT_EQ(m.count("null"), 0u);
}

TEST(RandomP2C, LoadedServerChosenOnlyWhenDrawnTwice) {
  auto b = make_backend({{"busy"}, {"idle"}});
  for (int i = 0; i < 10; ++i) b->find_server("busy")->request_started();
  RandomBalancer rb(b->servers(), 0ms, 7);
  auto m = count(rb, kPicks);
  EXPECT_NEAR(share(m, "busy"), 0.25, 0.01);  // P(both draws busy)
  EXPECT_NEAR(share(m, "idle"), 0.75, 0.01);
}

TEST(RandomP2C, DeterministicPerSeed) {
  auto b = make_backend({{"a"}, {"b"}, {"c"}, {"d"}});
  RandomBalancer r1(b->servers(), 0ms, 42), r2(b->servers(), 0ms, 42), r3(b->servers(), 0ms, 43);
  const std::string s1 = pick_names(r1, 40);
  EXPECT_EQ(s1, pick_names(r2, 40));
  EXPECT_NE(s1, pick_names(r3, 40));
}

TEST(RandomP2C, ExcludedAndUnusableSkipped) {
  auto b = make_backend({{"a"}, {"b"}, {"c"}, {"d"}});
  b->find_server("c")->set_admin_state(AdminState::kMaint);
  b->find_server("d")->set_weight(0);
  RandomBalancer rb(b->servers(), 0ms, 3);
  const uint32_t ex[] = {0};
  EXPECT_EQ(count(rb, 1000, SelectContext{ex}), (std::map<std::string, int>{{"b", 1000}}));
  const uint32_t ex2[] = {0, 1};
  EXPECT_EQ(rb.select(SelectContext{ex2}), nullptr);
}

}  // namespace
}  // namespace sag::affinity
