// The retry policy (session/forward/retry_policy.h): every combination of
// what failed, what was sent and what is left of the budget.
#include "session/forward/retry_policy.h"

#include <gtest/gtest.h>

namespace sag::session {
namespace {

Attempt attempt(AttemptFailure f, bool reused, bool byte, bool replayable, uint32_t charged = 0,
                uint32_t retries = 2) {
  return Attempt{f, reused, byte, replayable, charged, retries};
}

TEST(RetryPolicy, ConnectFailureMovesOnWhileBudgetLasts) {
  for (bool replayable : {false, true}) {
    auto v = decide_retry(attempt(AttemptFailure::kConnect, false, false, replayable, 0, 2));
    EXPECT_EQ(v.action, RetryVerdict::kTryAnother);
    EXPECT_TRUE(v.server_failed);
    v = decide_retry(attempt(AttemptFailure::kConnect, false, false, replayable, 2, 2));
    EXPECT_EQ(v.action, RetryVerdict::kAnswer);
    EXPECT_TRUE(v.server_failed);
  }
  EXPECT_EQ(decide_retry(attempt(AttemptFailure::kConnect, false, false, true, 0, 0)).action,
            RetryVerdict::kAnswer);
}

TEST(RetryPolicy, TimeoutIsNeverRetried) {
  for (bool reused : {false, true}) {
    for (bool replayable : {false, true}) {
      auto v = decide_retry(attempt(AttemptFailure::kTimeout, reused, false, replayable, 0, 5));
      EXPECT_EQ(v.action, RetryVerdict::kAnswer);
      EXPECT_TRUE(v.server_failed);
    }
  }
}

TEST(RetryPolicy, StalePooledConnectionIsReplayedFreeWhenSafe) {
  auto v = decide_retry(attempt(AttemptFailure::kServer, true, false, true, 2, 2));
  EXPECT_EQ(v.action, RetryVerdict::kReplayFresh) << "free: even with no budget left";
  EXPECT_FALSE(v.server_failed);
}

TEST(RetryPolicy, StaleConnectionWithUnsafeRequestIsAnsweredNotHeldAgainstServer) {
  auto v = decide_retry(attempt(AttemptFailure::kServer, true, false, false));
  EXPECT_EQ(v.action, RetryVerdict::kAnswer);
  EXPECT_FALSE(v.server_failed);
}

TEST(RetryPolicy, ServerFailureOnReplayableRequestMovesOn) {
  for (bool reused : {false, true}) {
    auto v = decide_retry(attempt(AttemptFailure::kServer, reused, true, true, 1, 2));
    EXPECT_EQ(v.action, RetryVerdict::kTryAnother);
    EXPECT_TRUE(v.server_failed);
    v = decide_retry(attempt(AttemptFailure::kServer, reused, true, true, 2, 2));
    EXPECT_EQ(v.action, RetryVerdict::kAnswer);
    EXPECT_TRUE(v.server_failed);
  }
  // A fresh connection that closed without a byte is the server's failure.
  auto v = decide_retry(attempt(AttemptFailure::kServer, false, false, true));
  EXPECT_EQ(v.action, RetryVerdict::kTryAnother);
  EXPECT_TRUE(v.server_failed);
}

TEST(RetryPolicy, UnsafeRequestIsNeverSentTwice) {
  for (bool reused : {false, true}) {
    auto v = decide_retry(attempt(AttemptFailure::kServer, reused, true, false, 0, 5));
    EXPECT_EQ(v.action, RetryVerdict::kAnswer);
    EXPECT_TRUE(v.server_failed);
  }
  auto v = decide_retry(attempt(AttemptFailure::kServer, false, false, false, 0, 5));
  EXPECT_EQ(v.action, RetryVerdict::kAnswer);
  EXPECT_TRUE(v.server_failed);
}

// decide_retry is constexpr: the rules can be checked at compile time too.
static_assert(decide_retry(Attempt{AttemptFailure::kServer, true, false, true, 0, 0}).action ==
              RetryVerdict::kReplayFresh);

}  // namespace
}  // namespace sag::session
