// socket_readiness over real loopback sockets: the marks, the waits that
// need an event, and the peer's FIN that must never be lost behind the last
// bytes read.
#include "config/base/socket_readiness.h"

#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

namespace sag::base {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

class SocketReadinessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    peer_.connect(acceptor.local_endpoint());
    acceptor.accept(ours_);
    // Keeps the io_context busy, so its reactor polls while the tests run it.
    keep_.expires_after(1h);
    keep_.async_wait([](error_code) {});
  }
  void TearDown() override { keep_.cancel(); }

  // Runs the io_context until `done` or two seconds passed.
  void run_until(const bool& done) {
    const auto end = std::chrono::steady_clock::now() + 2s;
    while (!done && std::chrono::steady_clock::now() < end) io_.run_one_for(10ms);
  }
  // Lets the reactor see what the kernel has for it.
  void settle() {
    std::this_thread::sleep_for(20ms);
    io_.run_for(20ms);
  }
  void peer_send(const std::string& s) { asio::write(peer_, asio::buffer(s)); }
  std::string receive(error_code& ec) {
    char buf[64];
    const size_t n = receive_now(ours_, asio::buffer(buf), ec);
    return std::string(buf, n);
  }
  // Starts async_wait_ready; `done` and `ec` say when and how it ended.
  void start_wait(tcp::socket::wait_type w, bool& done, error_code& ec) {
    done = false;
    async_wait_ready(ours_, w, [&done, &ec](error_code e) {
      ec = e;
      done = true;
    });
  }
  // Waits for readability through async_wait_ready; true when it completed.
  bool wait_readable(error_code& ec) {
    bool done = false;
    start_wait(tcp::socket::wait_read, done, ec);
    run_until(done);
    return done;
  }

  asio::io_context io_{1};
  tcp::socket peer_{io_};
  tcp::socket ours_{io_};
  asio::steady_timer keep_{io_};
};

TEST_F(SocketReadinessTest, EagainMarksTheSocketAndTheWaitNeedsAnEvent) {
  EXPECT_TRUE(maybe_readable(ours_)) << "unknown at first";
  error_code ec;
  EXPECT_EQ(receive(ec), "");
  EXPECT_EQ(ec, asio::error::would_block);
  EXPECT_FALSE(maybe_readable(ours_));

  bool done = false;
  start_wait(tcp::socket::wait_read, done, ec);
  io_.run_for(30ms);
  EXPECT_FALSE(done) << "nothing arrived: the wait must still be queued";
  peer_send("x");
  run_until(done);
  ASSERT_TRUE(done);
  EXPECT_FALSE(ec);
  EXPECT_TRUE(maybe_readable(ours_));
  EXPECT_EQ(receive(ec), "x");
}

TEST_F(SocketReadinessTest, AShortReadMarksOnlyOnceTheFinIsReported) {
  error_code ec;
  peer_send("ab");
  settle();
  EXPECT_EQ(receive(ec), "ab");
  // First short read: EPOLLRDHUP gets registered, nothing marked.
  EXPECT_TRUE(maybe_readable(ours_));
  EXPECT_EQ(receive(ec), "");
  EXPECT_EQ(ec, asio::error::would_block);

  peer_send("cd");
  ASSERT_TRUE(wait_readable(ec));
  EXPECT_EQ(receive(ec), "cd");
  EXPECT_FALSE(ec);
  EXPECT_FALSE(maybe_readable(ours_)) << "a short read with no FIN reported empties the socket";
}

TEST_F(SocketReadinessTest, AFinBehindTheLastBytesIsNeverLost) {
  error_code ec;
  peer_send("ab");  // a first short read registers EPOLLRDHUP
  settle();
  EXPECT_EQ(receive(ec), "ab");
  EXPECT_EQ(receive(ec), "");

  // Bytes and FIN arrive together, before the report that wakes us.
  peer_send("abc");
  peer_.shutdown(tcp::socket::shutdown_send);
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(wait_readable(ec));
  EXPECT_EQ(receive(ec), "abc");
  EXPECT_TRUE(maybe_readable(ours_)) << "the FIN waits behind the bytes: not empty";
  ASSERT_TRUE(wait_readable(ec)) << "a wait now must not hang";
  EXPECT_EQ(receive(ec), "");
  EXPECT_EQ(ec, asio::error::eof);
}

TEST_F(SocketReadinessTest, AFinWithTheVeryFirstBytesIsNeverLost) {
  error_code ec;
  peer_send("hello");
  peer_.shutdown(tcp::socket::shutdown_send);
  settle();
  EXPECT_EQ(receive(ec), "hello");
  EXPECT_TRUE(maybe_readable(ours_));
  EXPECT_EQ(receive(ec), "");
  EXPECT_EQ(ec, asio::error::eof);
}

TEST_F(SocketReadinessTest, ReceiveSomeWaitsWithoutMissingBytesOrEof) {
  error_code ec;
  EXPECT_EQ(receive(ec), "");  // drained
  std::string got;
  bool done = false;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        char buf[8];
        for (;;) {
          auto [e, n] = co_await receive_some(ours_, asio::buffer(buf));
          if (e) {
            ec = e;
            break;
          }
          got.append(buf, n);
        }
        done = true;
      },
      asio::detached);
  io_.run_for(20ms);
  peer_send("0123456789abcdef");  // more than one buffer
  io_.run_for(20ms);
  peer_send("xyz");
  peer_.shutdown(tcp::socket::shutdown_send);
  run_until(done);
  ASSERT_TRUE(done);
  EXPECT_EQ(got, "0123456789abcdefxyz");
  EXPECT_EQ(ec, asio::error::eof);
}

TEST_F(SocketReadinessTest, AnIdleSocketTheServerClosedTurnsReadable) {
  // What the upstream pool relies on to skip its recv(MSG_PEEK).
  error_code ec;
  peer_send("ab");
  settle();
  EXPECT_EQ(receive(ec), "ab");
  EXPECT_EQ(receive(ec), "");
  // As a response is read: the wait queued, woken by the bytes' event.
  peer_send("cd");
  ASSERT_TRUE(wait_readable(ec));
  EXPECT_EQ(receive(ec), "cd");
  ASSERT_FALSE(maybe_readable(ours_));
  settle();
  EXPECT_FALSE(maybe_readable(ours_)) << "quiet socket stays marked";
  peer_.close();
  settle();
  EXPECT_TRUE(maybe_readable(ours_)) << "the FIN's event sets the flag with no wait queued";
}

TEST_F(SocketReadinessTest, CancelEndsAQueuedWait) {
  error_code ec;
  EXPECT_EQ(receive(ec), "");
  bool done = false;
  start_wait(tcp::socket::wait_read, done, ec);
  io_.run_for(10ms);
  ASSERT_FALSE(done);
  ours_.cancel();
  run_until(done);
  ASSERT_TRUE(done);
  EXPECT_EQ(ec, asio::error::operation_aborted);
}

TEST_F(SocketReadinessTest, AClosedSocketFailsTheWaitAtOnce) {
  ours_.close();
  EXPECT_TRUE(maybe_readable(ours_));
  note_read_drained(ours_);  // no effect, no crash
  error_code ec;
  ASSERT_TRUE(wait_readable(ec));
  EXPECT_TRUE(ec);
}

TEST_F(SocketReadinessTest, AWriteWaitAfterEagainNeedsRoom) {
  ours_.non_blocking(true);
  std::string block(64 * 1024, 'z');
  size_t sent = 0;
  error_code ec;
  for (;;) {
    sent += ours_.write_some(asio::buffer(block), ec);
    if (ec) break;
  }
  ASSERT_EQ(ec, asio::error::would_block);
  note_write_blocked(ours_);
  bool done = false;
  start_wait(tcp::socket::wait_write, done, ec);
  io_.run_for(30ms);
  EXPECT_FALSE(done) << "the socket is full";
  std::string sink(1 << 20, '\0');
  size_t drained = 0;
  while (!done && drained < sent) {
    drained += peer_.read_some(asio::buffer(sink));
    io_.run_for(5ms);
  }
  ASSERT_TRUE(done);
  EXPECT_FALSE(ec);
}

}  // namespace
}  // namespace sag::base
