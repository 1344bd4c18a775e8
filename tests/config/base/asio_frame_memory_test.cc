// Coroutine frames come from the thread's BlockCache (asio_frame_memory.h):
// a suspended coroutine holds blocks, and gives them back when it ends; a
// frame larger than the cache's largest class still works.
#include "config/base/asio_frame_memory.h"

#include <gtest/gtest.h>

#include <array>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/base/asio_prelude.h"
#include "config/base/block_cache.h"

namespace sag::base {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

asio::awaitable<int> nested(asio::steady_timer& t, long& held) {
  auto [ec] = co_await t.async_wait(kTuple);
  held = BlockCache::outstanding();
  co_return ec ? 0 : 7;
}

asio::awaitable<int> big_frame() {
  std::array<char, 3 * BlockCache::kMaxBlock> local{};
  local[local.size() - 1] = 5;
  asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
  co_await t.async_wait(kTuple);  // `local` lives across the suspension
  co_return local[local.size() - 1];
}

TEST(AsioFrameMemoryTest, FramesComeFromTheBlockCacheAndGoBack) {
  asio::io_context io(1);
  const long before = BlockCache::outstanding();
  long held = 0;
  int result = 0, big = 0;
  asio::steady_timer t(io, 1ms);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        result = co_await nested(t, held);
        big = co_await big_frame();
      },
      asio::detached);
  io.run();
  EXPECT_EQ(result, 7);
  EXPECT_EQ(big, 5);
  if (BlockCache::kCaching) {
    EXPECT_GE(held - before, 2) << "the spawned coroutine's frame and nested()'s are cache blocks";
  }
  EXPECT_EQ(BlockCache::outstanding(), before) << "every frame went back";
}

}  // namespace
}  // namespace sag::base
