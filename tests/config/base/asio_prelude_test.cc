// The prelude's token and default-token aliases: errors come back as values.
#include "config/base/asio_prelude.h"

#include <gtest/gtest.h>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>

#include "config/base/block_cache.h"

namespace sag::base {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(AsioPreludeTest, ErrorsAreValues) {
  asio::io_context io;
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // With the explicit token: a refused connection is an error code.
        asio::ip::tcp::acceptor a(io, {asio::ip::address_v4::loopback(), 0});
        const auto ep = a.local_endpoint();
        a.close();
        asio::ip::tcp::socket s(io);
        auto [ec] = co_await s.async_connect(ep, kTuple);
        EXPECT_TRUE(ec);
        // With the default token: a cancelled wait is an error code too.
        SteadyTimerDefault t(io, 1h);
        asio::steady_timer canceller(io, 1ms);
        canceller.async_wait([&](auto) { t.cancel(); });
        auto [wec] = co_await t.async_wait();
        EXPECT_EQ(wec, asio::error::operation_aborted);
        done = true;
      },
      asio::detached);
  io.run_for(5s);
  EXPECT_TRUE(done);
}

// Blocks of the thread's cache out while a coroutine waits on a timer with
// `token`.
template <class Token>
long blocks_while_waiting(Token token) {
  asio::io_context io;
  asio::steady_timer t(io, 1h);
  const long before = BlockCache::outstanding();
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { co_await t.async_wait(token); }, asio::detached);
  io.poll();  // (runs until the coroutine waits)
  const long during = BlockCache::outstanding() - before;
  t.cancel();
  io.run();
  EXPECT_EQ(BlockCache::outstanding(), before);
  return during;
}

// The operation a coroutine awaits takes its state from the block cache
// (asio_frame_memory.h), as its frames do: one block more is out than when
// the handler names Asio's own allocator.
TEST(AsioPreludeTest, AwaitedOperationsUseTheBlockCache) {
  if (!BlockCache::kCaching) GTEST_SKIP() << "the cache is off under AddressSanitizer";
  const long ours = blocks_while_waiting(kTuple);
  const long asios = blocks_while_waiting(asio::bind_allocator(std::allocator<void>{}, kTuple));
  EXPECT_GT(asios, 0);  // the frames
  EXPECT_EQ(ours, asios + 1);
}

TEST(AsioPreludeTest, DefaultTokenTypes) {
  asio::io_context io;
  TcpAcceptorDefault acceptor(io, {asio::ip::address_v4::loopback(), 0});
  TcpSocketDefault socket(io);
  EXPECT_TRUE(acceptor.is_open());
  EXPECT_FALSE(socket.is_open());
}

}  // namespace
}  // namespace sag::base
