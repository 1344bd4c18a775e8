// What every algorithm of Backend::make_balancer must do: backups only when
// needed, excluded servers skipped, nullptr in bounded time when nothing is
// usable, slow start, no allocation per pick.
#include <gtest/gtest.h>
#include <malloc.h>

#include <chrono>

#include "affinity/balance/least_conn_balancer.h"
#include "affinity/balance/least_time_balancer.h"
#include "affinity/balance/maglev_balancer.h"
#include "affinity/balance/random_balancer.h"
#include "affinity/balance/round_robin_balancer.h"
#include "tests/affinity/balance/balancer_test_support.h"

namespace sag::affinity {
namespace {

using namespace std::chrono_literals;
using config::BalanceAlgorithm;
using testing::at_ms;
using testing::count;
using testing::make_backend;
using testing::Spec;
using Counts = std::map<std::string, int>;

class EveryBalancer : public ::testing::TestWithParam<BalanceAlgorithm> {
 protected:
  std::unique_ptr<Backend> backend(const std::vector<Spec>& specs,
                                   std::chrono::milliseconds slow_start = {}) {
    return make_backend(specs, GetParam(), slow_start);
  }
  // Distinct keys for the hashing algorithms, harmless for the others.
  static Counts picks(Balancer& bal, int n, SelectContext ctx = {}) {
    return count(bal, n, ctx, true);
  }
};

TEST_P(EveryBalancer, FactoryBuildsTheConfiguredAlgorithm) {
  auto b = backend({{"a"}, {"b"}});
  auto bal = b->make_balancer(5);
  Balancer* p = bal.get();
  switch (GetParam()) {
    case BalanceAlgorithm::kRoundRobin: EXPECT_TRUE(dynamic_cast<RoundRobinBalancer*>(p)); break;
    case BalanceAlgorithm::kLeastConn: EXPECT_TRUE(dynamic_cast<LeastConnBalancer*>(p)); break;
    case BalanceAlgorithm::kLeastTime: EXPECT_TRUE(dynamic_cast<LeastTimeBalancer*>(p)); break;
    case BalanceAlgorithm::kRandom: EXPECT_TRUE(dynamic_cast<RandomBalancer*>(p)); break;
    case BalanceAlgorithm::kSource:
    case BalanceAlgorithm::kHash: EXPECT_TRUE(dynamic_cast<MaglevBalancer*>(p)); break;
  }
}

TEST_P(EveryBalancer, BackupsOnlyWhenNoPrimaryUsable) {
  auto b = backend({{"p1"}, {"k1", 100, true}, {"p2"}, {"k2", 100, true}});
  auto bal = b->make_balancer(1);
  Counts m = picks(*bal, 2000);
  EXPECT_EQ(m.count("k1") + m.count("k2") + m.count("null"), 0u);
  EXPECT_GT(m["p1"], 700);
  EXPECT_GT(m["p2"], 700);

  b->find_server("p1")->set_healthy(false);
  EXPECT_EQ(picks(*bal, 100), (Counts{{"p2", 100}}));

  b->find_server("p2")->set_admin_state(AdminState::kDrain);  // takes no new sessions
  m = picks(*bal, 2000);
  EXPECT_EQ(m.count("p1") + m.count("p2") + m.count("null"), 0u);
  EXPECT_GT(m["k1"], 700);  // balanced among the backups
  EXPECT_GT(m["k2"], 700);

  const uint32_t ex[] = {1};  // k1 failed for this request
  EXPECT_EQ(picks(*bal, 100, SelectContext{ex}), (Counts{{"k2", 100}}));

  b->find_server("p2")->set_admin_state(AdminState::kReady);
  EXPECT_EQ(picks(*bal, 100), (Counts{{"p2", 100}}));
}

TEST_P(EveryBalancer, ExcludedPrimariesFallBackToBackup) {
  auto b = backend({{"a"}, {"b"}, {"bk", 100, true}});
  auto bal = b->make_balancer(2);
  const uint32_t ex_a[] = {0};
  EXPECT_EQ(picks(*bal, 200, SelectContext{ex_a}), (Counts{{"b", 200}}));
  const uint32_t ex_ab[] = {1, 0};
  EXPECT_EQ(picks(*bal, 200, SelectContext{ex_ab}), (Counts{{"bk", 200}}));
  const uint32_t ex_all[] = {2, 1, 0};
  EXPECT_EQ(picks(*bal, 10, SelectContext{ex_all}), (Counts{{"null", 10}}));
}

TEST_P(EveryBalancer, AllUnusableIsNullInBoundedTime) {
  std::vector<Spec> specs;
  for (int i = 0; i < 50; ++i) specs.push_back({"s" + std::to_string(i), 100, i % 5 == 0});
  auto b = backend(specs);
  for (int i = 0; i < 50; ++i) {
    Server* s = b->servers()[i];
    if (i % 3 == 0) s->set_healthy(false);
    else if (i % 3 == 1) s->set_admin_state(AdminState::kMaint);
    else s->set_weight(0);
  }
  auto bal = b->make_balancer(3);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(picks(*bal, 20000), (Counts{{"null", 20000}}));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  b->servers()[2]->set_weight(10);  // one comes back: everything goes there
  EXPECT_EQ(picks(*bal, 100), (Counts{{"s2", 100}}));
}

TEST_P(EveryBalancer, EmptyBackend) {
  auto b = backend({});
  auto bal = b->make_balancer();
  EXPECT_EQ(bal->select({}), nullptr);
}

TEST_P(EveryBalancer, SlowStartRampsTheReturningServer) {
  auto b = backend({{"steady"}, {"back"}}, 10s);
  Server* back = b->find_server("back");
  back->set_healthy(false, at_ms(0));
  back->set_healthy(true, at_ms(0));
  auto bal = b->make_balancer(4);
  constexpr int n = 40000;
  SelectContext ctx;
  auto share = [&](int64_t ms) {
    ctx.now = at_ms(ms);
    return picks(*bal, n, ctx)["back"] / double(n);
  };
  // Expected share of `back` at 0%, 50%, 100% of the ramp (weights 10, 55, 100
  // against 100).
  double at0, at50;
  switch (GetParam()) {
    case BalanceAlgorithm::kRoundRobin:
    case BalanceAlgorithm::kLeastConn:  // idle: weighted round robin among ties
      at0 = 10.0 / 110, at50 = 55.0 / 155;
      break;
    case BalanceAlgorithm::kRandom:
    case BalanceAlgorithm::kLeastTime:
      // P2C with ties to the first drawn: the weighted draw's share.
      at0 = 10.0 / 110, at50 = 55.0 / 155;
      break;
    case BalanceAlgorithm::kSource:
    case BalanceAlgorithm::kHash:
      // back keeps 10% then 55% of its half of the keys.
      at0 = 0.5 * 0.10, at50 = 0.5 * 0.55;
      break;
  }
  EXPECT_NEAR(share(0), at0, 0.01);
  EXPECT_NEAR(share(5000), at50, 0.01);
  EXPECT_NEAR(share(10000), 0.5, 0.01);
  EXPECT_NEAR(share(20000), 0.5, 0.01);
  // Without a clock in the context, slow start is not applied.
  ctx.now = {};
  EXPECT_NEAR(picks(*bal, n, ctx)["back"] / double(n), 0.5, 0.01);
}

TEST_P(EveryBalancer, NoAllocationPerPick) {
  std::vector<Spec> specs;
  for (int i = 0; i < 20; ++i) specs.push_back({"s" + std::to_string(i), 10u + i, i >= 18});
  auto b = backend(specs, 10s);
  b->servers()[3]->set_healthy(false, at_ms(0));
  b->servers()[3]->set_healthy(true, at_ms(0));
  b->servers()[5]->record_response_time(300us);
  auto bal = b->make_balancer(6);
  const uint32_t ex[] = {1, 2};
  SelectContext ctx{ex};
  ctx.now = at_ms(4000);
  bal->select(ctx);  // warm up
  const size_t before = mallinfo2().uordblks;
  uint64_t sum = 0;
  for (int i = 0; i < 10000; ++i) {
    ctx.hash = mix64(i);
    if (Server* s = bal->select(ctx)) sum += s->index();
  }
  EXPECT_EQ(mallinfo2().uordblks, before);
  EXPECT_GT(sum, 0u);
}

INSTANTIATE_TEST_SUITE_P(Algorithms, EveryBalancer,
                         ::testing::Values(BalanceAlgorithm::kRoundRobin,
                                           BalanceAlgorithm::kLeastConn,
                                           BalanceAlgorithm::kLeastTime, BalanceAlgorithm::kSource,
                                           BalanceAlgorithm::kHash, BalanceAlgorithm::kRandom),
                         [](const auto& info) { return std::string(config::to_string(info.param)); });

}  // namespace
}  // namespace sag::affinity
