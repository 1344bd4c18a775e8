// leastconn (affinity/balance/least_conn_balancer.h).
#include "affinity/balance/least_conn_balancer.h"

#include <gtest/gtest.h>

#include "tests/affinity/balance/balancer_test_support.h"

namespace sag::affinity {
namespace {

using namespace std::chrono_literals;
using testing::at_ms;
using testing::count;
using testing::make_backend;
using testing::pick_names;
using Counts = std::map<std::string, int>;

void set_active(Server* s, int n) {
  while (s->active_requests() > static_cast<uint64_t>(n)) s->request_finished();
  while (s->active_requests() < static_cast<uint64_t>(n)) s->request_started();
}

TEST(LeastConn, IdleEqualWeightsRoundRobin) {
  auto b = make_backend({{"a"}, {"b"}, {"c"}});
  LeastConnBalancer lc(b->servers(), 0ms);
  EXPECT_EQ(pick_names(lc, 7), "a b c a b c a");
}

TEST(LeastConn, IdleFollowsWeights) {
  auto b = make_backend({{"heavy", 300}, {"light", 100}});
  LeastConnBalancer lc(b->servers(), 0ms);
  EXPECT_EQ(count(lc, 400), (Counts{{"heavy", 300}, {"light", 100}}));
}

TEST(LeastConn, FewestActiveWins) {
  auto b = make_backend({{"a"}, {"b"}, {"c"}});
  set_active(b->find_server("a"), 2);
  set_active(b->find_server("b"), 0);
  set_active(b->find_server("c"), 1);
  LeastConnBalancer lc(b->servers(), 0ms);
  EXPECT_EQ(count(lc, 10), (Counts{{"b", 10}}));
  set_active(b->find_server("b"), 5);
  EXPECT_EQ(count(lc, 10), (Counts{{"c", 10}}));
  set_active(b->find_server("c"), 2);  // a and c tie at 2
  EXPECT_EQ(pick_names(lc, 4), "a c a c");
}

TEST(LeastConn, ActivePerWeight) {
  auto b = make_backend({{"big", 200}, {"small", 100}});
  LeastConnBalancer lc(b->servers(), 0ms);
  set_active(b->find_server("big"), 4);    // 4/200
  set_active(b->find_server("small"), 3);  // 3/100
  EXPECT_EQ(count(lc, 5), (Counts{{"big", 5}}));
  set_active(b->find_server("big"), 7);    // 7/200 > 3/100
  EXPECT_EQ(count(lc, 5), (Counts{{"small", 5}}));
  set_active(b->find_server("big"), 6);    // 6/200 == 3/100: tie, split 2:1
  EXPECT_EQ(count(lc, 300), (Counts{{"big", 200}, {"small", 100}}));
}

TEST(LeastConn, RequestsInFlightSpreadEvenly) {
  // Requests that never finish: each pick adds one to the chosen server.
  auto b = make_backend({{"a", 100}, {"b", 100}, {"c", 200}});
  LeastConnBalancer lc(b->servers(), 0ms);
  for (int i = 0; i < 400; ++i) lc.select({})->request_started();
  EXPECT_EQ(b->find_server("a")->active_requests(), 100u);
  EXPECT_EQ(b->find_server("b")->active_requests(), 100u);
  EXPECT_EQ(b->find_server("c")->active_requests(), 200u);
}

TEST(LeastConn, ExcludedAndUnusableSkipped) {
  auto b = make_backend({{"a"}, {"b"}, {"c"}, {"d"}});
  set_active(b->find_server("a"), 0);
  set_active(b->find_server("b"), 1);
  set_active(b->find_server("c"), 2);
  set_active(b->find_server("d"), 3);
  LeastConnBalancer lc(b->servers(), 0ms);
  const uint32_t ex_a[] = {0};
  EXPECT_EQ(count(lc, 5, SelectContext{ex_a}), (Counts{{"b", 5}}));
  b->find_server("b")->set_admin_state(AdminState::kDrain);
  EXPECT_EQ(count(lc, 5, SelectContext{ex_a}), (Counts{{"c", 5}}));
  b->find_server("c")->set_healthy(false);
  EXPECT_EQ(count(lc, 5, SelectContext{ex_a}), (Counts{{"d", 5}}));
  const uint32_t ex_ad[] = {3, 0};
  EXPECT_EQ(lc.select(SelectContext{ex_ad}), nullptr);
}

TEST(LeastConn, SlowStartWeighsTheReturningServerLess) {
  auto b = make_backend({{"a"}, {"back"}});
  Server* back = b->find_server("back");
  back->set_healthy(false, at_ms(0));
  back->set_healthy(true, at_ms(0));
  LeastConnBalancer lc(b->servers(), 10s);
  set_active(b->find_server("a"), 5);
  set_active(back, 1);
  SelectContext ctx;
  ctx.now = at_ms(0);  // back's effective weight 10: 1/10 > 5/100
  EXPECT_EQ(count(lc, 5, ctx), (Counts{{"a", 5}}));
  ctx.now = at_ms(10000);  // full weight: 1/100 < 5/100
  EXPECT_EQ(count(lc, 5, ctx), (Counts{{"back", 5}}));
}

}  // namespace
}  // namespace sag::affinity
