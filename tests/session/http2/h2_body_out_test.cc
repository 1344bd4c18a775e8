// The DATA source's logic (session/http2/h2_body_out.h) and the stream
// signal's relative wait (Signal::wait_for in session/http2/h2_stream.h),
// without a connection.
#include "session/http2/h2_body_out.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "config/base/coarse_clock.h"

namespace sag::session {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class H2BodyOutTest : public ::testing::Test {
 protected:
  H2BodyOutTest() : group_(io_.get_executor()), st_(io_.get_executor(), group_, 1) {}

  void offer(const std::string& bytes, bool last) {
    offered_ = bytes;
    st_.out = offered_.data();
    st_.out_len = offered_.size();
    st_.out_last = last;
  }
  // Whether the stream was woken since the last look (a wait on its signal
  // with a deadline already passed returns at once either way).
  bool woken() {
    bool notified = false;
    boost::asio::co_spawn(io_, st_.sig.wait_until(Clock::now()),
                          [&](std::exception_ptr, bool n) { notified = n; });
    io_.restart();
    io_.run();
    return notified;
  }
  std::string take(size_t length, uint32_t& flags, ssize_t& rv) {
    char buf[64] = {};
    flags = 0;
    rv = take_h2_body_out(st_, reinterpret_cast<uint8_t*>(buf), length, &flags);
    return rv > 0 ? std::string(buf, static_cast<size_t>(rv)) : std::string();
  }

  boost::asio::io_context io_;
  DeadlineGroup group_;
  H2Stream st_;
  std::string offered_;
};

TEST_F(H2BodyOutTest, AnOfferTakenInPiecesEndsWithEofAndAWakeUp) {
  offer("hello world", /*last=*/true);
  uint32_t flags;
  ssize_t rv;
  EXPECT_EQ(take(5, flags, rv), "hello");
  EXPECT_EQ(flags, 0u);
  EXPECT_FALSE(woken()) << "woken while bytes were still offered";
  EXPECT_EQ(take(64, flags, rv), " world");
  EXPECT_EQ(flags, uint32_t{NGHTTP2_DATA_FLAG_EOF});
  EXPECT_TRUE(woken());
  EXPECT_FALSE(st_.deferred);
}

TEST_F(H2BodyOutTest, AnOfferUsedUpThatIsNotTheLastWakesWithoutEof) {
  offer("abc", /*last=*/false);
  uint32_t flags;
  ssize_t rv;
  EXPECT_EQ(take(3, flags, rv), "abc");
  EXPECT_EQ(flags, 0u);
  EXPECT_TRUE(woken()) << "the stream's buffer is free again";
  EXPECT_FALSE(st_.deferred);
}

TEST_F(H2BodyOutTest, NothingOfferedDefersUntilMoreComes) {
  offer("", /*last=*/false);
  uint32_t flags;
  ssize_t rv;
  take(64, flags, rv);
  EXPECT_EQ(rv, NGHTTP2_ERR_DEFERRED);
  EXPECT_TRUE(st_.deferred);
  EXPECT_EQ(flags, 0u);
  EXPECT_TRUE(woken());
}

TEST_F(H2BodyOutTest, AnEmptyLastOfferEndsTheBody) {
  offer("", /*last=*/true);
  uint32_t flags;
  ssize_t rv;
  take(64, flags, rv);
  EXPECT_EQ(rv, 0);
  EXPECT_EQ(flags, uint32_t{NGHTTP2_DATA_FLAG_EOF});
  EXPECT_FALSE(st_.deferred);
}

// wait_for: a notification already there answers at once; otherwise the
// wait ends after the duration (read from the coarse clock, rounded up: not
// early by a tick).
TEST_F(H2BodyOutTest, SignalWaitForTimesOutOrAnswersANotification) {
  Signal sig(io_.get_executor());
  bool notified = true;
  // wait_for reads the coarse clock and adds its tick: the wait ends no
  // earlier than that reading + tick + 30 ms (the coarse clock itself may
  // lag the fine one by more than a tick when the kernel runs a tick late).
  const auto not_before = base::coarse_steady_now() + base::coarse_resolution() + 30ms;
  boost::asio::co_spawn(io_, sig.wait_for(30ms), [&](std::exception_ptr, bool n) { notified = n; });
  io_.run();
  EXPECT_FALSE(notified);
  EXPECT_GE(Clock::now(), not_before);

  sig.notify();
  const auto before = Clock::now();
  boost::asio::co_spawn(io_, sig.wait_for(10s), [&](std::exception_ptr, bool n) { notified = n; });
  io_.restart();
  io_.run();
  EXPECT_TRUE(notified);
  EXPECT_LT(Clock::now() - before, 1s);
}

}  // namespace
}  // namespace sag::session
