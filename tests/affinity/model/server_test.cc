// Server: slow-start weight ramp, the response-time average and operators'
// changes (affinity/model/server.h).
#include "affinity/model/server.h"

#include <gtest/gtest.h>

#include "tests/affinity/balance/balancer_test_support.h"

namespace sag::affinity {
namespace {

using namespace std::chrono_literals;
using testing::at_ms;
using testing::make_backend;

TEST(ServerSlowStart, RampFromTenthToFull) {
  auto b = make_backend({{"a", 100}});
  Server& s = *b->servers()[0];
  s.set_healthy(false, at_ms(0));
  s.set_healthy(true, at_ms(1000));
  EXPECT_EQ(s.up_since(), at_ms(1000));
  EXPECT_EQ(s.effective_weight(at_ms(1000), 10s), 10u);    // 0%
  EXPECT_EQ(s.effective_weight(at_ms(3500), 10s), 32u);    // 25%: 100 * (1 + 9/4) / 10
  EXPECT_EQ(s.effective_weight(at_ms(6000), 10s), 55u);    // 50%
  EXPECT_EQ(s.effective_weight(at_ms(10999), 10s), 99u);   // just before the end
  EXPECT_EQ(s.effective_weight(at_ms(11000), 10s), 100u);  // 100%
  EXPECT_EQ(s.effective_weight(at_ms(99000), 10s), 100u);
  // A clock reading before up_since counts as the start of the ramp.
  EXPECT_EQ(s.effective_weight(at_ms(500), 10s), 10u);
}

TEST(ServerSlowStart, AtLeastOneAndOffCases) {
  auto b = make_backend({{"small", 5}, {"never_down", 100}, {"zero", 0}});
  Server& small = *b->servers()[0];
  small.set_healthy(false, at_ms(0));
  small.set_healthy(true, at_ms(0));
  EXPECT_EQ(small.effective_weight(at_ms(0), 10s), 1u);       // 5/10 rounds to 0: at least 1
  EXPECT_EQ(small.effective_weight(at_ms(5000), 10s), 2u);    // 5 * 0.55
  EXPECT_EQ(small.effective_weight(at_ms(10000), 10s), 5u);
  EXPECT_EQ(small.effective_weight(at_ms(0), 0s), 5u);        // slow start off
  EXPECT_EQ(small.effective_weight({}, 10s), 5u);             // no clock: full
  // Up from the start: no ramp (as HAProxy: only after being seen down).
  EXPECT_EQ(b->servers()[1]->effective_weight(at_ms(0), 10s), 100u);
  EXPECT_EQ(b->servers()[2]->effective_weight(at_ms(0), 10s), 0u);
}

TEST(ServerSlowStart, OnlyDownToUpRestartsTheRamp) {
  auto b = make_backend({{"a", 100}});
  Server& s = *b->servers()[0];
  s.set_healthy(false, at_ms(0));
  s.set_healthy(true, at_ms(1000));
  s.set_healthy(true, at_ms(5000));  // still up: not a transition
  EXPECT_EQ(s.up_since(), at_ms(1000));
  s.set_healthy(false, at_ms(6000));
  EXPECT_EQ(s.up_since(), at_ms(1000));
  s.set_healthy(true, at_ms(7000));
  EXPECT_EQ(s.up_since(), at_ms(7000));
  // The old one-argument form uses the real steady clock.
  s.set_healthy(false);
  const auto before = std::chrono::steady_clock::now();
  s.set_healthy(true);
  EXPECT_GE(s.up_since(), before);
  EXPECT_LE(s.up_since(), std::chrono::steady_clock::now());
  EXPECT_TRUE(s.healthy());
}

TEST(ServerAdmin, StateNamesBothWays) {
  for (AdminState st : {AdminState::kReady, AdminState::kDrain, AdminState::kMaint})
    EXPECT_EQ(parse_admin_state(to_string(st)), st);
  EXPECT_STREQ(to_string(AdminState::kDrain), "drain");
  EXPECT_EQ(parse_admin_state("Ready"), std::nullopt);
  EXPECT_EQ(parse_admin_state(""), std::nullopt);
}

TEST(ServerAdmin, ApplyAdminSetsWhatIsGivenAndRampsOutOfMaint) {
  auto b = make_backend({{"a", 100}});
  Server& s = *b->servers()[0];
  EXPECT_EQ(s.apply_admin(AdminState::kMaint, std::nullopt, at_ms(1000)), " state ready -> maint");
  EXPECT_EQ(s.up_since(), std::chrono::steady_clock::time_point{});  // into maint: no ramp
  EXPECT_EQ(s.apply_admin(std::nullopt, 40u, at_ms(2000)), " weight 100 -> 40");
  EXPECT_EQ(s.admin_state(), AdminState::kMaint);
  EXPECT_EQ(s.apply_admin(AdminState::kMaint, 40u, at_ms(3000)), "");  // nothing changed
  EXPECT_EQ(s.apply_admin(AdminState::kDrain, 50u, at_ms(4000)), " state maint -> drain weight 40 -> 50");
  EXPECT_EQ(s.up_since(), at_ms(4000));  // out of maint: the ramp restarts
  EXPECT_EQ(s.apply_admin(AdminState::kReady, std::nullopt, at_ms(5000)), " state drain -> ready");
  EXPECT_EQ(s.up_since(), at_ms(4000));  // drain -> ready: no new ramp
  EXPECT_EQ(s.weight(), 50u);
}

TEST(ServerResponseTime, Ewma) {
  auto b = make_backend({{"a"}});
  Server& s = *b->servers()[0];
  EXPECT_FALSE(s.has_response_time());
  EXPECT_EQ(s.response_time_ewma(), 0us);
  s.record_response_time(1000us);  // first sample taken as is
  EXPECT_TRUE(s.has_response_time());
  EXPECT_EQ(s.response_time_ewma(), 1000us);
  s.record_response_time(2000us);  // + (2000 - 1000) / 5
  EXPECT_EQ(s.response_time_ewma(), 1200us);
  s.record_response_time(0us);     // - 1200 / 5
  EXPECT_EQ(s.response_time_ewma(), 960us);
  for (int i = 0; i < 100; ++i) s.record_response_time(0us);
  EXPECT_TRUE(s.has_response_time());  // a real average of ~0 is still a sample
  EXPECT_EQ(s.response_time_ewma(), 0us);
  for (int i = 0; i < 100; ++i) s.record_response_time(50us);
  EXPECT_EQ(s.response_time_ewma(), 49us);  // converges (fixed point, 1/16 us)
}

}  // namespace
}  // namespace sag::affinity
