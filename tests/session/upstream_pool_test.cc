// UpstreamPool over real loopback connections: a pooled connection with
// anything to read (stray bytes past a response, or EOF) is never handed
// out again, whatever its age (issue 10's response mix-up); limits and
// timeouts.
#include "session/upstream_pool.h"

#include <chrono>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "config/base/socket_readiness.h"

namespace sag::session {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

class UpstreamPoolTest : public ::testing::Test {
 protected:
  // A connected pair: the gateway's end (to pool) and the server's end.
  std::pair<tcp::socket, tcp::socket> connect() {
    tcp::socket client(io_), server(io_);
    client.connect(acceptor_.local_endpoint());
    acceptor_.accept(server);
    return {std::move(client), std::move(server)};
  }
  static UpstreamPool::SocketPtr pooled(tcp::socket s) {
    return base::make_pooled<tcp::socket>(std::move(s));
  }
  // Lets bytes or a FIN sent by one end reach the other's receive queue.
  static void settle() { std::this_thread::sleep_for(20ms); }

  asio::io_context io_;
  tcp::acceptor acceptor_{io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  const UpstreamPool::Clock::time_point t0_ = UpstreamPool::Clock::now();
};

TEST_F(UpstreamPoolTest, QuietConnectionIsReused) {
  config::PoolConfig cfg;
  UpstreamPool pool(2, cfg);
  auto [up, srv] = connect();
  const auto handle = up.native_handle();
  pool.give_back(1, pooled(std::move(up)), t0_);
  EXPECT_EQ(pool.idle_count(), 1u);
  EXPECT_FALSE(pool.take(0, t0_));  // another server's list
  auto got = pool.take(1, t0_ + 1ms);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->native_handle(), handle);
  EXPECT_EQ(pool.idle_count(), 0u);
}

TEST_F(UpstreamPoolTest, StrayBytesCloseTheConnectionAtOnceWhateverItsAge) {
  config::PoolConfig cfg;
  UpstreamPool pool(1, cfg);
  auto [up, srv] = connect();
  pool.give_back(0, pooled(std::move(up)), t0_);
  asio::write(srv, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL")));
  settle();
  // A moment later (well under a second of idling) it must not be handed out.
  EXPECT_FALSE(pool.take(0, t0_ + 1ms));
  EXPECT_EQ(pool.idle_count(), 0u);
}

TEST_F(UpstreamPoolTest, ServerCloseIsDetected) {
  config::PoolConfig cfg;
  UpstreamPool pool(1, cfg);
  auto [up, srv] = connect();
  pool.give_back(0, pooled(std::move(up)), t0_);
  srv.close();
  settle();
  EXPECT_FALSE(pool.take(0, t0_ + 1ms));
}

// The pool skips its recv(MSG_PEEK) for a connection whose last read
// drained it (base::socket_readiness); the reactor's event for stray bytes
// or a FIN must still keep it from being handed out.
TEST_F(UpstreamPoolTest, AConnectionMarkedDrainedIsStillCheckedOnceAnEventCame) {
  config::PoolConfig cfg;
  UpstreamPool pool(1, cfg);
  asio::steady_timer keep(io_, 1h);  // the reactor polls while io_ runs
  keep.async_wait([](boost::system::error_code) {});
  auto drained = [&](tcp::socket& s) {
    boost::system::error_code ec;
    char buf[64];
    base::receive_now(s, asio::buffer(buf), ec);
    ASSERT_EQ(ec, asio::error::would_block);
    ASSERT_FALSE(base::maybe_readable(s));
  };
  for (const bool close : {false, true}) {
    SCOPED_TRACE(close ? "server closed" : "stray bytes");
    auto [up, srv] = connect();
    drained(up);
    pool.give_back(0, pooled(std::move(up)), t0_);
    if (close) {
      srv.close();
    } else {
      asio::write(srv, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\n\r\nEVIL")));
    }
    settle();
    io_.run_for(20ms);
    EXPECT_FALSE(pool.take(0, t0_ + 1ms));
    EXPECT_EQ(pool.idle_count(), 0u);
  }
  // A quiet one marked drained is handed out (with no system call).
  auto [up, srv] = connect();
  drained(up);
  pool.give_back(0, pooled(std::move(up)), t0_);
  io_.run_for(20ms);
  EXPECT_TRUE(pool.take(0, t0_ + 1ms));
  keep.cancel();
}

TEST_F(UpstreamPoolTest, MostRecentFirstAndBadOnesSkipped) {
  config::PoolConfig cfg;
  UpstreamPool pool(1, cfg);
  auto [a, sa] = connect();
  auto [b, sb] = connect();
  auto [c, sc] = connect();
  const auto ha = a.native_handle();
  pool.give_back(0, pooled(std::move(a)), t0_);
  pool.give_back(0, pooled(std::move(b)), t0_ + 1ms);
  pool.give_back(0, pooled(std::move(c)), t0_ + 2ms);
  sc.close();                                          // newest: closed by its server
  asio::write(sb, asio::buffer(std::string_view("x")));  // next: stray byte
  settle();
  auto got = pool.take(0, t0_ + 3ms);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->native_handle(), ha);
  EXPECT_EQ(pool.idle_count(), 0u);
}

TEST_F(UpstreamPoolTest, IdleTimeoutAndSweep) {
  config::PoolConfig cfg;
  cfg.idle_timeout = 1000ms;
  UpstreamPool pool(1, cfg);
  auto [a, sa] = connect();
  auto [b, sb] = connect();
  auto [c, sc] = connect();
  pool.give_back(0, pooled(std::move(a)), t0_);
  EXPECT_FALSE(pool.take(0, t0_ + 1000ms));  // too old: closed
  pool.give_back(0, pooled(std::move(b)), t0_);
  pool.give_back(0, pooled(std::move(c)), t0_ + 900ms);
  sc.close();
  settle();
  pool.sweep(t0_ + 950ms);  // c: closed by its server; b: still young
  EXPECT_EQ(pool.idle_count(), 1u);
  pool.sweep(t0_ + 1000ms);  // b: past idle_timeout
  EXPECT_EQ(pool.idle_count(), 0u);
}

TEST_F(UpstreamPoolTest, FullListDropsTheOldest) {
  config::PoolConfig cfg;
  cfg.max_idle_per_server = 2;
  UpstreamPool pool(1, cfg);
  auto [a, sa] = connect();
  auto [b, sb] = connect();
  auto [c, sc] = connect();
  const auto hb = b.native_handle(), hc = c.native_handle();
  pool.give_back(0, pooled(std::move(a)), t0_);
  pool.give_back(0, pooled(std::move(b)), t0_);
  pool.give_back(0, pooled(std::move(c)), t0_);
  EXPECT_EQ(pool.idle_count(), 2u);
  auto first = pool.take(0, t0_);
  auto second = pool.take(0, t0_);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->native_handle(), hc);
  EXPECT_EQ(second->native_handle(), hb);
  // The dropped oldest one is closed: its server sees EOF.
  char ch;
  boost::system::error_code ec;
  sa.read_some(asio::buffer(&ch, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
}

TEST_F(UpstreamPoolTest, DropAndCloseAll) {
  config::PoolConfig cfg;
  UpstreamPool pool(2, cfg);
  auto [a, sa] = connect();
  auto [b, sb] = connect();
  pool.give_back(0, pooled(std::move(a)), t0_);
  pool.give_back(1, pooled(std::move(b)), t0_);
  pool.drop(0);
  EXPECT_EQ(pool.idle_count(), 1u);
  pool.close_all();
  EXPECT_EQ(pool.idle_count(), 0u);
}

}  // namespace
}  // namespace sag::session
