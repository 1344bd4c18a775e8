// Deadline and DeadlineGroup (session/deadline.h) over a real loopback
// connection: a wait past the deadline is cancelled and fired() says so;
// re-arming later, forget() and cancel_now() do what their contracts say;
// a group fires each member at its own time and keeps no work alive when
// nothing is armed.
#include "session/deadline.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <vector>

#include <boost/asio/write.hpp>

#include "config/base/asio_prelude.h"
#include "config/base/coarse_clock.h"

namespace sag::session {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class DeadlineTest : public ::testing::Test {
 protected:
  DeadlineTest() : a_(io_), b_(io_), group_(io_.get_executor()), deadline_(group_) {
    tcp::acceptor acc(io_, {asio::ip::make_address("127.0.0.1"), 0});
    a_.connect(acc.local_endpoint());
    acc.accept(b_);
  }

  // Runs `body` to completion.
  void run(asio::awaitable<void> body) {
    io_.restart();
    asio::co_spawn(io_, std::move(body), asio::detached);
    io_.run_for(10s);
  }

  // Waits for a byte that never comes; returns the error and how long it took.
  asio::awaitable<std::pair<boost::system::error_code, Clock::duration>> wait_read() {
    char c;
    const auto start = Clock::now();
    auto [ec, n] = co_await asio::async_read(a_, asio::buffer(&c, 1), base::kTuple);
    co_return std::pair{ec, Clock::now() - start};
  }

  asio::io_context io_;
  tcp::socket a_, b_;
  DeadlineGroup group_;
  Deadline deadline_;
};

TEST_F(DeadlineTest, PassingTheDeadlineCancelsTheVictim) {
  boost::system::error_code ec;
  Clock::duration took{};
  run([&]() -> asio::awaitable<void> {
    deadline_.arm_after(50ms, &a_);
    std::tie(ec, took) = co_await wait_read();
  }());
  EXPECT_EQ(ec, asio::error::operation_aborted);
  EXPECT_TRUE(deadline_.fired());
  EXPECT_GE(took, 40ms);
  EXPECT_LT(took, 5s);
}

// arm_after reads the coarse clock, which lags the fine one by up to a tick
// (4 ms here) plus however late the kernel ran that tick (up to 3 ms seen in
// this VM under load). Rounded up by the tick, the deadline passes no
// earlier than the coarse reading at arming + the tick + the delay, which
// the timer guarantees; unrounded, it would pass up to a tick before that
// (a timer fires within a fraction of a millisecond of its time), so the
// check fails at once. (The coarse clock only moves at ticks: a tick
// between the test's reading and arm_after's makes the deadline later,
// never earlier.)
TEST_F(DeadlineTest, ArmAfterIsNotEarlyByATick) {
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE(i);
    boost::system::error_code ec;
    Clock::time_point not_before{}, fired{};
    run([&]() -> asio::awaitable<void> {
      not_before = base::coarse_steady_now() + base::coarse_resolution() + 20ms;
      deadline_.arm_after(20ms, &a_);
      std::tie(ec, std::ignore) = co_await wait_read();
      fired = Clock::now();
    }());
    EXPECT_EQ(ec, asio::error::operation_aborted);
    EXPECT_GE(fired, not_before);
  }
}

TEST_F(DeadlineTest, RearmingLaterPostponesIt) {
  boost::system::error_code ec;
  Clock::duration took{};
  run([&]() -> asio::awaitable<void> {
    deadline_.arm_after(30ms, &a_);
    deadline_.arm_after(300ms, &a_);  // moved later before it passed
    std::tie(ec, took) = co_await wait_read();
  }());
  EXPECT_EQ(ec, asio::error::operation_aborted);
  EXPECT_GE(took, 250ms) << "the earlier deadline must not fire";
}

TEST_F(DeadlineTest, RearmingEarlierWakesSooner) {
  Clock::duration took{};
  run([&]() -> asio::awaitable<void> {
    deadline_.arm_after(5s, &a_);
    asio::steady_timer t(io_);
    t.expires_after(10ms);
    co_await t.async_wait(base::kTuple);
    deadline_.arm_after(40ms, &a_);
    took = (co_await wait_read()).second;
  }());
  EXPECT_LT(took, 2s);
  EXPECT_TRUE(deadline_.fired());
}

TEST_F(DeadlineTest, ForgetDisarmsForItsVictimOnly) {
  boost::system::error_code ec;
  run([&]() -> asio::awaitable<void> {
    deadline_.arm_after(30ms, &a_);
    deadline_.forget(&b_);  // not the victim: still armed
    ec = (co_await wait_read()).first;
  }());
  EXPECT_EQ(ec, asio::error::operation_aborted);

  bool fired = true;
  run([&]() -> asio::awaitable<void> {
    deadline_.arm_after(30ms, &a_);
    deadline_.forget(&a_);
    asio::steady_timer t(io_);
    t.expires_after(120ms);
    co_await t.async_wait(base::kTuple);
    fired = deadline_.fired();
  }());
  EXPECT_FALSE(fired);
}

TEST_F(DeadlineTest, CancelNowIsNotAFiredDeadline) {
  boost::system::error_code ec;
  bool fired = true;
  run([&]() -> asio::awaitable<void> {
    deadline_.arm_after(5s, &a_);
    asio::steady_timer t(io_);
    t.expires_after(20ms);
    auto cancel = [&]() -> asio::awaitable<void> {
      co_await t.async_wait(base::kTuple);
      deadline_.cancel_now();
    };
    auto read = [&]() -> asio::awaitable<void> { ec = (co_await wait_read()).first; };
    co_await (read() && cancel());
    fired = deadline_.fired();
    deadline_.disarm();
  }());
  EXPECT_EQ(ec, asio::error::operation_aborted);
  EXPECT_FALSE(fired);
}

// Deadlines of one group: each fires at its own time and cancels only its
// own victim; moving one earlier wakes the group sooner; one that leaves
// the group is never touched.
TEST_F(DeadlineTest, GroupFiresEachMemberAtItsOwnTime) {
  tcp::socket c(io_), d(io_);
  {
    tcp::acceptor acc(io_, {asio::ip::make_address("127.0.0.1"), 0});
    c.connect(acc.local_endpoint());
    acc.accept(d);
  }
  Deadline early(group_), late(group_);
  auto gone = std::make_unique<Deadline>(group_);
  boost::system::error_code ec_a, ec_c;
  Clock::duration took_a{}, took_c{};
  bool late_fired_when_early_did = true;
  run([&]() -> asio::awaitable<void> {
    late.arm_after(5s, &c);
    early.arm_after(5s, &a_);
    gone->arm_after(20ms, &a_);
    gone.reset();  // leaves the group armed: must not fire
    early.arm_after(60ms, &a_);  // earlier than the group's timer
    auto read_a = [&]() -> asio::awaitable<void> {
      std::tie(ec_a, took_a) = co_await wait_read();
      late_fired_when_early_did = late.fired();
      late.arm_after(80ms, &c);
    };
    auto read_c = [&]() -> asio::awaitable<void> {
      char ch;
      const auto start = Clock::now();
      auto [ec, n] = co_await asio::async_read(c, asio::buffer(&ch, 1), base::kTuple);
      ec_c = ec;
      took_c = Clock::now() - start;
    };
    co_await (read_a() && read_c());
  }());
  EXPECT_EQ(ec_a, asio::error::operation_aborted);
  EXPECT_GE(took_a, 50ms) << "the member that left the group fired";
  EXPECT_LT(took_a, 2s);
  EXPECT_TRUE(early.fired());
  EXPECT_FALSE(late_fired_when_early_did);
  EXPECT_EQ(ec_c, asio::error::operation_aborted);
  EXPECT_GE(took_c, took_a + 60ms);
  EXPECT_LT(took_c, 3s);
  EXPECT_TRUE(late.fired());
}

// Many members armed in random order fire in time order; disarmed ones are
// dropped from the heap when their time comes, and a group with nothing
// armed leaves the io_context without work (run() returns).
TEST_F(DeadlineTest, GroupOrdersManyAndHoldsNoWorkWhenNothingIsArmed) {
  constexpr int kN = 40;
  std::vector<std::unique_ptr<Deadline>> ds;
  std::vector<tcp::socket> socks;
  tcp::acceptor acc(io_, {asio::ip::make_address("127.0.0.1"), 0});
  std::vector<tcp::socket> peers;
  for (int i = 0; i < kN; ++i) {
    socks.emplace_back(io_);
    socks.back().connect(acc.local_endpoint());
    peers.push_back(acc.accept());
    ds.push_back(std::make_unique<Deadline>(group_));
  }
  std::vector<int> order;
  io_.restart();
  for (int k = 0; k < kN; ++k) {
    const int i = (k * 17) % kN;  // a permutation
    // Odd ones are armed, then disarmed: they must never fire.
    ds[i]->arm_after(std::chrono::milliseconds(10 + 5 * i), &socks[i]);
    if (i % 2) ds[i]->disarm();
    asio::co_spawn(
        io_,
        [&, i]() -> asio::awaitable<void> {
          char ch;
          auto [ec, n] = co_await asio::async_read(socks[i], asio::buffer(&ch, 1), base::kTuple);
          if (ec == asio::error::operation_aborted) order.push_back(i);
        },
        asio::detached);
  }
  // Odd sockets get a byte after everything fired, so their reads end.
  asio::steady_timer t(io_);
  t.expires_after(std::chrono::milliseconds(10 + 5 * kN + 100));
  t.async_wait([&](boost::system::error_code) {
    for (int i = 1; i < kN; i += 2) asio::write(peers[i], asio::buffer("x", 1));
  });
  const auto start = Clock::now();
  io_.run();  // returns: nothing left armed, no timer wait pending
  EXPECT_LT(Clock::now() - start, 5s);
  std::vector<int> want;
  for (int i = 0; i < kN; i += 2) want.push_back(i);
  EXPECT_EQ(order, want);
  EXPECT_EQ(group_.queued(), 0u);
  for (int i = 0; i < kN; ++i) EXPECT_EQ(ds[i]->fired(), i % 2 == 0) << i;
}

}  // namespace
}  // namespace sag::session
