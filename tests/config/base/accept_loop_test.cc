// The accept loop: connections are handed over, a failed accept is reported
// and paused on (not spun on), and closing the acceptor ends the loop.
#include "config/base/accept_loop.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <vector>

namespace sag::base {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

struct Loop {
  Loop() : acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
    asio::co_spawn(
        io,
        accept_loop(
            acceptor, [this](tcp::socket s) { accepted.push_back(std::move(s)); },
            [this](const boost::system::error_code& ec) { errors.push_back(ec); }),
        [this](std::exception_ptr e) {
          ended = true;
          if (e) std::rethrow_exception(e);
        });
  }
  // Runs the loop until pred() or the timeout.
  template <class Pred>
  bool run_until(Pred pred, std::chrono::milliseconds timeout = 5s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!pred() && std::chrono::steady_clock::now() < until) io.run_for(5ms);
    return pred();
  }
  tcp::socket connect() {
    tcp::socket c(io);
    c.connect(acceptor.local_endpoint());
    return c;
  }

  asio::io_context io;
  tcp::acceptor acceptor;
  std::vector<tcp::socket> accepted;
  std::vector<boost::system::error_code> errors;
  bool ended = false;
};

TEST(AcceptLoopTest, HandsOverEachConnection) {
  Loop l;
  auto a = l.connect();
  auto b = l.connect();
  ASSERT_TRUE(l.run_until([&] { return l.accepted.size() == 2; }));
  EXPECT_TRUE(l.errors.empty());
  EXPECT_FALSE(l.ended);
}

TEST(AcceptLoopTest, ClosingTheAcceptorEndsTheLoop) {
  Loop l;
  l.run_until([] { return false; }, 20ms);  // the loop waits in async_accept
  l.acceptor.close();
  ASSERT_TRUE(l.run_until([&] { return l.ended; }));
  EXPECT_TRUE(l.errors.empty());
}

TEST(AcceptLoopTest, OutOfDescriptorsIsReportedThenRetriedAfterTheBackoff) {
  // UBSan checks a virtual call by probing the object's memory through a
  // pipe; with no descriptor left it cannot, and reports a false "invalid
  // vptr" on Asio's timer queue.
  if (std::getenv("SAG_SANITIZED"))
    GTEST_SKIP() << "needs descriptors the sanitizer runtime can't do without";
  Loop l;
  l.run_until([] { return false; }, 20ms);
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  auto client = l.connect();
  // The lowest free descriptor becomes the limit: the accept can't get one.
  const int probe = ::dup(0);
  ASSERT_GE(probe, 0);
  ::close(probe);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(probe);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  const bool reported = l.run_until([&] { return !l.errors.empty(); });
  const auto first_error = std::chrono::steady_clock::now();
  setrlimit(RLIMIT_NOFILE, &saved);
  ASSERT_TRUE(reported);
  EXPECT_EQ(l.errors.front(), boost::system::errc::too_many_files_open);
  ASSERT_TRUE(l.run_until([&] { return l.accepted.size() == 1; }));
  // One error per backoff, not a spin.
  EXPECT_LE(l.errors.size(), 2u);
  EXPECT_GE(std::chrono::steady_clock::now() - first_error, kAcceptBackoff / 2);
}

}  // namespace
}  // namespace sag::base
