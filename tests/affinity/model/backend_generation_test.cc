// Backends across config generations (SIGHUP reload, docs/behaviour.md#reload):
// servers matched by name keep their id and live state, new ones take ids
// no kept server has, removed ones are retired at commit, consistent-hash
// keys move only for servers that changed.
#include "affinity/model/backend.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "affinity/balance/stable_hash.h"
#include "tests/affinity/balance/balancer_test_support.h"

namespace sag::affinity {
namespace {

using testing::at_ms;
using testing::backend_config;
using testing::Spec;

config::GatewayConfig gateway_of(std::vector<config::BackendConfig> backends) {
  config::GatewayConfig c;
  c.backends = std::move(backends);
  return c;
}

config::BackendConfig named(config::BackendConfig b, std::string name) {
  b.name = std::move(name);
  return b;
}

TEST(BackendGenerationTest, KeptServersKeepTheirIdAndStateWhateverTheirPosition) {
  Backend before(backend_config({{"a"}, {"b"}, {"c"}}));
  Server* b0 = before.find_server("b");
  b0->set_admin_state(AdminState::kDrain);
  b0->set_healthy(false, at_ms(5));
  b0->request_started();

  // Reordered.
  Backend after(backend_config({{"c"}, {"b"}, {"a"}}), &before);
  for (const char* name : {"a", "b", "c"}) {
    EXPECT_EQ(after.find_server(name)->index(), before.find_server(name)->index()) << name;
    EXPECT_EQ(after.find_server(name)->state(), before.find_server(name)->state()) << name;
  }
  const Server* b1 = after.find_server("b");
  EXPECT_EQ(b1->admin_state(), AdminState::kDrain);
  EXPECT_FALSE(b1->healthy());
  EXPECT_EQ(b1->active_requests(), 1u);  // counters are the same counters
  b0->request_finished();                // a request of the old generation ends
  EXPECT_EQ(b1->active_requests(), 0u);
  EXPECT_EQ(after.server(b1->index()), b1);
  EXPECT_EQ(after.servers()[1], b1);  // servers() follows the new file
}

TEST(BackendGenerationTest, NewServersTakeIdsNoKeptServerHasAndRemovedOnesAreRetiredAtCommit) {
  Backend before(backend_config({{"a"}, {"b"}, {"c"}}));
  const uint32_t id_b = before.find_server("b")->index();
  // b removed, d added (a rename is a removal plus an addition).
  Backend after(backend_config({{"a"}, {"d"}, {"c"}}), &before);
  const Server* d = after.find_server("d");
  ASSERT_NE(d, nullptr);
  std::set<uint32_t> ids;
  for (const Server* s : after.servers()) ids.insert(s->index());
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_NE(d->index(), id_b) << "an id of a server that may still have sessions must not move";
  EXPECT_EQ(after.server(id_b), nullptr);
  EXPECT_TRUE(d->healthy());
  EXPECT_NE(d->state(), before.find_server("b")->state());

  // Nothing of the previous generation changes before the commit.
  EXPECT_FALSE(before.find_server("b")->retired());
  after.commit(&before);
  EXPECT_TRUE(before.find_server("b")->retired());
  EXPECT_FALSE(before.find_server("b")->usable_for_pinned());
  EXPECT_FALSE(before.find_server("b")->usable_for_new());
  EXPECT_FALSE(after.find_server("a")->retired());

  // One more reload: b's id, now free, may go to a new server.
  Backend third(backend_config({{"a"}, {"d"}, {"c"}, {"e"}}), &after);
  EXPECT_EQ(third.find_server("e")->index(), id_b);
  EXPECT_EQ(third.id_count(), 4u);
}

TEST(BackendGenerationTest, AConfiguredWeightChangeAppliesAndAnUnchangedOneKeepsTheAdminWeight) {
  Backend before(backend_config({{"a", 100}, {"b", 100}}));
  before.find_server("a")->set_weight(7);  // admin API
  before.find_server("b")->set_weight(9);
  Backend after(backend_config({{"a", 100}, {"b", 50}}), &before);
  after.commit(&before);
  EXPECT_EQ(after.find_server("a")->weight(), 7u);
  EXPECT_EQ(after.find_server("b")->weight(), 50u);
}

TEST(BackendGenerationTest, BackendsKeepTheirIdsAndAGoneBackendsServersAreRetired) {
  BackendSet before(gateway_of({named(backend_config({{"a"}}), "one"),
                                named(backend_config({{"x"}, {"y"}}), "two")}));
  const uint32_t id_two = before.find("two")->id();
  BackendSet after(gateway_of({named(backend_config({{"a"}}), "three"),
                               named(backend_config({{"y"}}), "two")}),
                   &before);
  EXPECT_EQ(after.find("two")->id(), id_two);
  EXPECT_NE(after.find("three")->id(), before.find("one")->id());
  EXPECT_EQ(after.by_id(after.find("three")->id()), after.find("three"));
  after.commit(&before);
  EXPECT_TRUE(before.find("one")->find_server("a")->retired());
  EXPECT_TRUE(before.find("two")->find_server("x")->retired());
  EXPECT_FALSE(before.find("two")->find_server("y")->retired());
  // The persistence counters are the backend's, across generations.
  EXPECT_EQ(&after.find("two")->persistence_counters(), &before.find("two")->persistence_counters());

  const auto names = after.server_names();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[1].backend, "two");
  const uint32_t y = after.find("two")->find_server("y")->index();
  ASSERT_LT(y, names[1].servers.size());
  EXPECT_EQ(names[1].servers[y], "y");
  for (size_t i = 0; i < names[1].servers.size(); ++i) {
    if (i != y) {
      EXPECT_EQ(names[1].servers[i], "");  // x's id: no server now
    }
  }
}

// Consistent hashing: after a reload that adds a server, keys of the kept
// servers stay where they were unless they moved to the new one (Maglev's
// minimal disruption: a few in ten thousand shift between kept servers as
// the table refills, against a third of all keys with a modulo hash).
TEST(BackendGenerationTest, ASourceRingMovesOnlyKeysOfChangedServers) {
  const auto specs = std::vector<Spec>{{"s0"}, {"s1"}, {"s2"}, {"s3"}};
  Backend before(backend_config(specs, config::BalanceAlgorithm::kSource));
  auto more = specs;
  more.insert(more.begin() + 1, Spec{"s4"});  // in the middle of the file
  Backend after(backend_config(more, config::BalanceAlgorithm::kSource), &before);
  after.commit(&before);
  auto b0 = before.make_balancer();
  auto b1 = after.make_balancer();
  int moved = 0, moved_elsewhere = 0;
  constexpr int kKeys = 20000;
  for (int i = 0; i < kKeys; ++i) {
    SelectContext ctx;
    ctx.hash = stable_hash64("client-" + std::to_string(i));
    const std::string from = b0->select(ctx)->name();
    const std::string to = b1->select(ctx)->name();
    if (from == to) continue;
    ++moved;
    if (to != "s4") ++moved_elsewhere;
  }
  EXPECT_LT(moved_elsewhere, kKeys / 500);
  EXPECT_GT(moved, kKeys / 10);  // about a fifth go to the new server
  EXPECT_LT(moved, kKeys * 3 / 10);
}

}  // namespace
}  // namespace sag::affinity
