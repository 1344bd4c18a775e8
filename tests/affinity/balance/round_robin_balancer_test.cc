// Smooth weighted round robin (affinity/balance/round_robin_balancer.h).
#include "affinity/balance/round_robin_balancer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "affinity/model/backend.h"
#include "tests/affinity/balance/balancer_test_support.h"
#include "affinity/model/server.h"

namespace sag::affinity {
namespace {

using testing::make_backend;
using testing::Spec;

std::string pick_names(Balancer& bal, int n, std::span<const uint32_t> excluded = {}) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    Server* s = bal.select(SelectContext{excluded, 0});
    if (!out.empty()) out += ' ';
    out += s ? s->name() : "null";
  }
  return out;
}

std::map<std::string, int> count(Balancer& bal, int n, std::span<const uint32_t> excluded = {}) {
  std::map<std::string, int> m;
  for (int i = 0; i < n; ++i) {
    Server* s = bal.select(SelectContext{excluded, 0});
    ++m[s ? s->name() : "null"];
  }
  return m;
}

TEST(RoundRobin, EqualWeightsCycle) {
  auto backend = make_backend({{"a"}, {"b"}, {"c"}});
  RoundRobinBalancer rr(backend->servers());
  EXPECT_EQ(pick_names(rr, 9), "a b c a b c a b c");
}

TEST(RoundRobin, EqualWeightsEven) {
  auto backend = make_backend({{"a", 7}, {"b", 7}, {"c", 7}, {"d", 7}});
  RoundRobinBalancer rr(backend->servers());
  auto m = count(rr, 4000);
  EXPECT_EQ(m, (std::map<std::string, int>{{"a", 1000}, {"b", 1000}, {"c", 1000}, {"d", 1000}}));
}

TEST(RoundRobin, MakeBalancerIsRoundRobin) {
  auto backend = make_backend({{"a"}, {"b"}});
  auto bal = backend->make_balancer();
  EXPECT_EQ(pick_names(*bal, 4), "a b a b");
  // Each balancer has its own state.
  auto bal2 = backend->make_balancer();
  EXPECT_EQ(pick_names(*bal2, 1), "a");
}

TEST(RoundRobin, SmoothFiveOneOne) {
  auto backend = make_backend({{"a", 5}, {"b", 1}, {"c", 1}});
  RoundRobinBalancer rr(backend->servers());
  // nginx's sequence, repeated.
  EXPECT_EQ(pick_names(rr, 14), "a a b a c a a a a b a c a a");
}

TEST(RoundRobin, SmoothNoBurstsInAnyWindow) {
  auto backend = make_backend({{"a", 5}, {"b", 1}, {"c", 1}});
  RoundRobinBalancer rr(backend->servers());
  std::vector<std::string> seq;
  for (int i = 0; i < 700; ++i) seq.push_back(rr.select({})->name());
  // Never more than 2 consecutive picks of the heavy one within a cycle of 7,
  // and over the cycle boundary (a a | a a) never more than 4.
  for (size_t i = 0; i + 7 <= seq.size(); i += 7) {
    int run = 0, longest = 0;
    std::map<std::string, int> m;
    for (size_t j = i; j < i + 7; ++j) {
      ++m[seq[j]];
      run = seq[j] == "a" ? run + 1 : 0;
      longest = std::max(longest, run);
    }
    EXPECT_LE(longest, 2) << "window at " << i;
    EXPECT_EQ(m["a"], 5);
    EXPECT_EQ(m["b"], 1);
    EXPECT_EQ(m["c"], 1);
  }
  int run = 0;
  for (const auto& s : seq) {
    run = s == "a" ? run + 1 : 0;
    EXPECT_LE(run, 4);
  }
}

TEST(RoundRobin, ThreeToOneExact) {
  auto backend = make_backend({{"heavy", 300}, {"light", 100}});
  RoundRobinBalancer rr(backend->servers());
  auto m = count(rr, 4000);
  EXPECT_EQ(m["heavy"], 3000);
  EXPECT_EQ(m["light"], 1000);
  EXPECT_EQ(m.size(), 2u);
}

TEST(RoundRobin, WeightZeroNeverPicked) {
  auto backend = make_backend({{"a", 1}, {"zero", 0}, {"b", 1}});
  RoundRobinBalancer rr(backend->servers());
  auto m = count(rr, 1000);
  EXPECT_EQ(m, (std::map<std::string, int>{{"a", 500}, {"b", 500}}));
  // Set at run time too (admin PUT weight 0).
  backend->find_server("a")->set_weight(0);
  m = count(rr, 100);
  EXPECT_EQ(m, (std::map<std::string, int>{{"b", 100}}));
}

TEST(RoundRobin, OnlyWeightZeroGivesNull) {
  auto backend = make_backend({{"a", 0}, {"b", 0}});
  RoundRobinBalancer rr(backend->servers());
  EXPECT_EQ(rr.select({}), nullptr);
}

TEST(RoundRobin, RuntimeWeightChangeApplies) {
  auto backend = make_backend({{"a", 1}, {"b", 1}});
  RoundRobinBalancer rr(backend->servers());
  count(rr, 10);
  backend->find_server("a")->set_weight(3);
  auto m = count(rr, 400);
  EXPECT_EQ(m["a"], 300);
  EXPECT_EQ(m["b"], 100);
}

TEST(RoundRobin, UnhealthyDrainMaintNeverPicked) {
  auto backend = make_backend({{"up"}, {"down"}, {"drain"}, {"maint"}, {"up2"}});
  backend->find_server("down")->set_healthy(false);
  backend->find_server("drain")->set_admin_state(AdminState::kDrain);
  backend->find_server("maint")->set_admin_state(AdminState::kMaint);
  RoundRobinBalancer rr(backend->servers());
  auto m = count(rr, 1000);
  EXPECT_EQ(m, (std::map<std::string, int>{{"up", 500}, {"up2", 500}}));
}

TEST(RoundRobin, ServerReturningIsPickedAgain) {
  auto backend = make_backend({{"a"}, {"b"}});
  RoundRobinBalancer rr(backend->servers());
  backend->find_server("a")->set_healthy(false);
  EXPECT_EQ(pick_names(rr, 3), "b b b");
  backend->find_server("a")->set_healthy(true);
  auto m = count(rr, 100);
  EXPECT_EQ(m["a"], 50);
  EXPECT_EQ(m["b"], 50);
}

TEST(RoundRobin, ExcludedSkipped) {
  auto backend = make_backend({{"a"}, {"b"}, {"c"}});
  RoundRobinBalancer rr(backend->servers());
  const uint32_t ex_a[] = {0};
  auto m = count(rr, 100, ex_a);
  EXPECT_EQ(m, (std::map<std::string, int>{{"b", 50}, {"c", 50}}));
  const uint32_t ex_ab[] = {1, 0};
  m = count(rr, 10, ex_ab);
  EXPECT_EQ(m, (std::map<std::string, int>{{"c", 10}}));
  const uint32_t ex_all[] = {2, 0, 1};
  EXPECT_EQ(rr.select(SelectContext{ex_all, 0}), nullptr);
}

TEST(RoundRobin, ExcludedPrimariesFallBackToBackup) {
  auto backend = make_backend({{"a"}, {"b"}, {"bk", 100, true}});
  RoundRobinBalancer rr(backend->servers());
  const uint32_t ex[] = {0, 1};
  EXPECT_EQ(pick_names(rr, 2, ex), "bk bk");
}

TEST(RoundRobin, BackupsOnlyWhenNoPrimaryUsable) {
  auto backend = make_backend({{"p1"}, {"bk1", 100, true}, {"p2"}, {"bk2", 100, true}});
  RoundRobinBalancer rr(backend->servers());
  auto m = count(rr, 100);
  EXPECT_EQ(m, (std::map<std::string, int>{{"p1", 50}, {"p2", 50}}));

  // One primary left: it takes everything.
  backend->find_server("p1")->set_healthy(false);
  m = count(rr, 10);
  EXPECT_EQ(m, (std::map<std::string, int>{{"p2", 10}}));

  // No primary: backups, balanced among themselves.
  backend->find_server("p2")->set_admin_state(AdminState::kMaint);
  m = count(rr, 100);
  EXPECT_EQ(m, (std::map<std::string, int>{{"bk1", 50}, {"bk2", 50}}));
  std::string seq = pick_names(rr, 4);
  EXPECT_TRUE(seq == "bk1 bk2 bk1 bk2" || seq == "bk2 bk1 bk2 bk1") << seq;

  // A primary that is only draining takes no new sessions: still backups.
  backend->find_server("p2")->set_admin_state(AdminState::kDrain);
  m = count(rr, 10);
  EXPECT_EQ(m["p2"], 0);
  EXPECT_EQ(m["bk1"] + m["bk2"], 10);

  // A primary back: backups stop at once.
  backend->find_server("p1")->set_healthy(true);
  m = count(rr, 10);
  EXPECT_EQ(m, (std::map<std::string, int>{{"p1", 10}}));
}

TEST(RoundRobin, BackupsWeighted) {
  auto backend = make_backend({{"p", 100}, {"bk1", 3, true}, {"bk2", 1, true}});
  backend->find_server("p")->set_healthy(false);
  RoundRobinBalancer rr(backend->servers());
  auto m = count(rr, 400);
  EXPECT_EQ(m, (std::map<std::string, int>{{"bk1", 300}, {"bk2", 100}}));
}

TEST(RoundRobin, AllUnusableIsNullInBoundedTime) {
  auto backend = make_backend({{"a"}, {"b", 100, true}, {"c"}});
  backend->find_server("a")->set_healthy(false);
  backend->find_server("b")->set_admin_state(AdminState::kMaint);
  backend->find_server("c")->set_admin_state(AdminState::kDrain);
  RoundRobinBalancer rr(backend->servers());
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 100000; ++i) ASSERT_EQ(rr.select({}), nullptr);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  // And recovers.
  backend->find_server("c")->set_admin_state(AdminState::kReady);
  EXPECT_EQ(pick_names(rr, 2), "c c");
}

TEST(RoundRobin, EmptyBackend) {
  auto backend = make_backend({});
  RoundRobinBalancer rr(backend->servers());
  EXPECT_EQ(rr.select({}), nullptr);
}

}  // namespace
}  // namespace sag::affinity
