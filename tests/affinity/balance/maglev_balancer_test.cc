// source / hash: Maglev consistent hashing (affinity/balance/maglev_table.h,
// affinity/balance/maglev_balancer.h).
#include "affinity/balance/maglev_balancer.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "affinity/balance/stable_hash.h"
#include "tests/affinity/balance/balancer_test_support.h"

namespace sag::affinity {
namespace {

using namespace std::chrono_literals;
using testing::at_ms;
using testing::count;
using testing::make_backend;
using testing::Spec;

constexpr int kKeys = 100000;

uint64_t key_hash(int i) { return stable_hash64("client-" + std::to_string(i)); }

// Server name per key.
std::vector<std::string> map_keys(Balancer& bal, SelectContext ctx = {}) {
  std::vector<std::string> out(kKeys);
  for (int i = 0; i < kKeys; ++i) {
    ctx.hash = key_hash(i);
    Server* s = bal.select(ctx);
    out[i] = s ? s->name() : "null";
  }
  return out;
}

std::vector<Spec> servers(int n) {
  std::vector<Spec> v;
  for (int i = 0; i < n; ++i) v.push_back({"s" + std::to_string(i)});
  return v;
}

int moved(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  int n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

TEST(MaglevTable, SizeIsPrimeAtLeastHundredPerServer) {
  EXPECT_EQ(MaglevTable::size_for(1), 65537u);
  EXPECT_EQ(MaglevTable::size_for(655), 65537u);
  EXPECT_EQ(MaglevTable::size_for(656), 65609u);  // smallest prime >= 65600
  EXPECT_EQ(MaglevTable::size_for(1000), 100003u);
}

TEST(MaglevTable, SlotsFollowWeights) {
  std::vector<MaglevTable::Entry> e = {{"a", 100, 0}, {"b", 100, 1}, {"c", 200, 2}, {"d", 50, 3}};
  MaglevTable t(e);
  ASSERT_EQ(t.size(), 65537u);
  int n[4] = {};
  for (size_t i = 0; i < t.size(); ++i) ++n[t.at(i)];
  const double m = static_cast<double>(t.size());
  EXPECT_NEAR(n[0] / m, 100.0 / 450, 0.001);
  EXPECT_NEAR(n[1] / m, 100.0 / 450, 0.001);
  EXPECT_NEAR(n[2] / m, 200.0 / 450, 0.001);
  EXPECT_NEAR(n[3] / m, 50.0 / 450, 0.001);
  EXPECT_EQ(t.weight_of(2), 200u);
}

TEST(Maglev, SameKeySameServerAcrossInstances) {
  auto b1 = make_backend(servers(5), config::BalanceAlgorithm::kHash);
  auto b2 = make_backend(servers(5), config::BalanceAlgorithm::kHash);
  auto bal1 = b1->make_balancer(1);
  auto bal2 = b2->make_balancer(2);
  MaglevBalancer own(b1->servers(), 0ms);
  auto m1 = map_keys(*bal1);
  EXPECT_EQ(m1, map_keys(*bal2));
  EXPECT_EQ(m1, map_keys(own));
  EXPECT_EQ(m1, map_keys(*bal1));  // and over time
}

TEST(Maglev, DistributionByWeight) {
  auto b = make_backend({{"a", 100}, {"b", 100}, {"c", 200}}, config::BalanceAlgorithm::kSource);
  auto bal = b->make_balancer();
  std::map<std::string, int> m;
  for (auto& s : map_keys(*bal)) ++m[s];
  EXPECT_NEAR(m["a"] / double(kKeys), 0.25, 0.01);
  EXPECT_NEAR(m["b"] / double(kKeys), 0.25, 0.01);
  EXPECT_NEAR(m["c"] / double(kKeys), 0.50, 0.01);
}

TEST(Maglev, RemovingOneServerMovesAboutItsShare) {
  for (int n : {3, 10, 25}) {
    auto full = make_backend(servers(n), config::BalanceAlgorithm::kHash);
    auto specs = servers(n);
    specs.erase(specs.begin() + n / 2);
    auto less = make_backend(specs, config::BalanceAlgorithm::kHash);
    auto a = map_keys(*full->make_balancer());
    auto b = map_keys(*less->make_balancer());
    EXPECT_LE(moved(a, b), kKeys * (1.0 / n + 0.05)) << n << " servers";
  }
}

TEST(Maglev, AddingOneServerMovesAboutItsShare) {
  for (int n : {3, 10, 25}) {
    auto before = make_backend(servers(n), config::BalanceAlgorithm::kHash);
    auto after = make_backend(servers(n + 1), config::BalanceAlgorithm::kHash);
    auto a = map_keys(*before->make_balancer());
    auto b = map_keys(*after->make_balancer());
    EXPECT_LE(moved(a, b), kKeys * (1.0 / (n + 1) + 0.05)) << n << " servers";
    EXPECT_GE(moved(a, b), kKeys * (1.0 / (n + 1) - 0.02)) << n << " servers";
  }
}

TEST(Maglev, DownServerMovesOnlyItsKeysAndSpreadsThem) {
  auto b = make_backend(servers(5), config::BalanceAlgorithm::kHash);
  auto bal = b->make_balancer();
  auto before = map_keys(*bal);
  b->find_server("s2")->set_healthy(false);
  auto during = map_keys(*bal);
  std::map<std::string, int> took;
  for (int i = 0; i < kKeys; ++i) {
    if (before[i] == "s2") {
      EXPECT_NE(during[i], "s2");
      ++took[during[i]];
    } else {
      ASSERT_EQ(during[i], before[i]) << "key " << i;
    }
  }
  EXPECT_EQ(took.size(), 4u);  // spread over every other server
  for (auto& [name, n] : took) EXPECT_GT(n, 0.15 * (kKeys / 5)) << name;
  b->find_server("s2")->set_healthy(true);  // no slow start configured
  EXPECT_EQ(map_keys(*bal), before);
}

TEST(Maglev, ExcludedServerSkippedDeterministically) {
  auto b = make_backend(servers(4), config::BalanceAlgorithm::kHash);
  auto bal = b->make_balancer();
  for (int i = 0; i < 1000; ++i) {
    SelectContext ctx;
    ctx.hash = key_hash(i);
    Server* first = bal->select(ctx);
    const uint32_t ex[] = {first->index()};
    ctx.excluded = ex;
    Server* second = bal->select(ctx);
    ASSERT_NE(second, nullptr);
    EXPECT_NE(second, first);
    EXPECT_EQ(bal->select(ctx), second);
  }
}

TEST(Maglev, MostServersDownStillFindsTheLastOne) {
  auto b = make_backend(servers(30), config::BalanceAlgorithm::kHash);
  for (int i = 0; i < 29; ++i) b->servers()[i]->set_healthy(false);
  auto bal = b->make_balancer();
  auto m = map_keys(*bal);
  for (auto& s : m) ASSERT_EQ(s, "s29");
  b->servers()[29]->set_admin_state(AdminState::kMaint);
  EXPECT_EQ(count(*bal, 1000, {}, true), (std::map<std::string, int>{{"null", 1000}}));
}

TEST(Maglev, BackupsHashedAmongThemselves) {
  auto b = make_backend({{"p1"}, {"p2"}, {"k1", 100, true}, {"k2", 100, true}},
                        config::BalanceAlgorithm::kHash);
  auto bal = b->make_balancer();
  auto m = count(*bal, 10000, {}, true);
  EXPECT_EQ(m.count("k1") + m.count("k2"), 0u);
  b->find_server("p1")->set_healthy(false);
  b->find_server("p2")->set_admin_state(AdminState::kDrain);
  auto first = map_keys(*bal);
  std::map<std::string, int> n;
  for (auto& s : first) ++n[s];
  EXPECT_EQ(n.size(), 2u);
  EXPECT_NEAR(n["k1"] / double(kKeys), 0.5, 0.02);
  EXPECT_EQ(map_keys(*bal), first);  // consistent among backups too
}

TEST(Maglev, SlowStartTakesKeysBackGradually) {
  auto b = make_backend(servers(4), config::BalanceAlgorithm::kHash, 10s);
  auto bal = b->make_balancer();
  SelectContext ctx;
  ctx.now = at_ms(0);
  auto before = map_keys(*bal, ctx);
  int own = 0;
  for (auto& s : before) own += s == "s1";
  Server* s1 = b->find_server("s1");
  s1->set_healthy(false, at_ms(0));
  s1->set_healthy(true, at_ms(1000));
  auto share_back = [&](int64_t ms) {
    SelectContext c;
    c.now = at_ms(ms);
    auto now = map_keys(*bal, c);
    int back = 0;
    for (int i = 0; i < kKeys; ++i) {
      if (now[i] == "s1") {
        EXPECT_EQ(before[i], "s1");  // only its own keys come back
        ++back;
      } else if (before[i] != "s1") {
        EXPECT_EQ(now[i], before[i]);
      }
    }
    return static_cast<double>(back) / own;
  };
  EXPECT_NEAR(share_back(1000), 0.10, 0.01);
  EXPECT_NEAR(share_back(6000), 0.55, 0.01);
  EXPECT_DOUBLE_EQ(share_back(11000), 1.0);
}

}  // namespace
}  // namespace sag::affinity
