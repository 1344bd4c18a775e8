// spawn_inline: the body runs at once up to its first wait, on the given
// executor after that; `done` is called once, after the body's frame is
// gone, with the body's exception if it threw.
#include "config/base/spawn_inline.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "config/base/asio_prelude.h"
#include "config/base/block_cache.h"

namespace sag::base {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Sets `*gone` when destroyed (a moved-from one does not). Passed by value
// to a body: a coroutine's parameter copies live as long as its frame, so
// `*gone` tells whether the frame itself was destroyed (its locals die
// earlier, when the body returns).
struct Sentinel {
  explicit Sentinel(bool* g) : gone(g) {}
  Sentinel(Sentinel&& o) noexcept : gone(std::exchange(o.gone, nullptr)) {}
  ~Sentinel() {
    if (gone) *gone = true;
  }
  bool* gone;
};

asio::awaitable<bool> wait_then_return(Sentinel, asio::steady_timer& timer,
                                       std::vector<int>& steps, asio::io_context& io) {
  steps.push_back(1);
  const auto ex = co_await asio::this_coro::executor;
  EXPECT_TRUE(ex == io.get_executor());
  co_await timer.async_wait(kTuple);
  steps.push_back(3);
  co_return true;  // (dropped)
}

TEST(SpawnInlineTest, RunsAtOnceUpToTheFirstWaitThenFinishesOnTheExecutor) {
  asio::io_context io;
  asio::steady_timer timer(io, 1ms);
  std::vector<int> steps;
  int calls = 0;
  bool frame_gone = false;
  // spawn_inline is called on the io_context's thread, as Http2Session does.
  asio::post(io, [&] {
    spawn_inline(io.get_executor(), wait_then_return(Sentinel(&frame_gone), timer, steps, io),
                 [&](std::exception_ptr e) noexcept {
                   EXPECT_FALSE(e);
                   EXPECT_TRUE(frame_gone);  // the body's frame is destroyed first
                   steps.push_back(4);
                   ++calls;
                 });
    EXPECT_FALSE(frame_gone);
    steps.push_back(2);  // the body already waits: it ran before this line
  });
  io.run_for(5s);
  EXPECT_EQ(steps, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(calls, 1);
}

TEST(SpawnInlineTest, ABodyThatNeverWaitsEndsBeforeSpawnInlineReturns) {
  asio::io_context io;
  std::vector<int> steps;
  asio::post(io, [&] {
    spawn_inline(io.get_executor(), [&]() -> asio::awaitable<void> {
      steps.push_back(1);
      co_return;
    }(), [&](std::exception_ptr e) noexcept {
      EXPECT_FALSE(e);
      steps.push_back(2);
    });
    steps.push_back(3);
  });
  io.run_for(5s);
  EXPECT_EQ(steps, (std::vector<int>{1, 2, 3}));
}

asio::awaitable<void> wait_then_throw(Sentinel, asio::steady_timer* timer) {
  if (timer) co_await timer->async_wait(kTuple);
  throw std::runtime_error("stream failed");
}

// Without `wait_first`, the body throws before any wait, inside spawn_inline.
void expect_throw_reaches_done(bool wait_first) {
  asio::io_context io;
  asio::steady_timer wait(io, 1ms);
  asio::steady_timer* timer = wait_first ? &wait : nullptr;
  std::exception_ptr seen;
  int calls = 0;
  bool frame_gone = false;
  bool returned = false;
  asio::post(io, [&] {
    spawn_inline(io.get_executor(), wait_then_throw(Sentinel(&frame_gone), timer),
                 [&](std::exception_ptr e) noexcept {
                   EXPECT_TRUE(frame_gone);
                   EXPECT_EQ(returned, timer != nullptr);  // inline when it never waited
                   seen = e;
                   ++calls;
                 });
    returned = true;
  });
  // The exception does not leave through run().
  EXPECT_NO_THROW(io.run_for(5s));
  ASSERT_EQ(calls, 1);
  ASSERT_TRUE(seen);
  try {
    std::rethrow_exception(seen);
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "stream failed");
  }
}

TEST(SpawnInlineTest, AThrowAfterAWaitReachesDoneAsItsException) {
  expect_throw_reaches_done(true);
}

TEST(SpawnInlineTest, AThrowBeforeAnyWaitReachesDoneBeforeTheCallReturns) {
  expect_throw_reaches_done(false);
}

asio::awaitable<void> wait_for(asio::steady_timer& t) { co_await t.async_wait(kTuple); }

// Many bodies waiting at once, then ended, give back every frame (each
// entry frame and body frame) to the thread's cache. (Under ASan the cache
// counts nothing: there the check is ASan's leak report.)
TEST(SpawnInlineTest, EveryFrameIsGivenBack) {
  asio::io_context io;
  const long before = BlockCache::outstanding();
  int ended = 0;
  std::vector<std::unique_ptr<asio::steady_timer>> timers;
  for (int i = 0; i < 64; ++i) timers.push_back(std::make_unique<asio::steady_timer>(io, 1h));
  asio::post(io, [&] {
    for (auto& t : timers)
      spawn_inline(io.get_executor(), wait_for(*t), [&](std::exception_ptr) noexcept { ++ended; });
  });
  io.poll();
  EXPECT_EQ(ended, 0);
  if (BlockCache::kCaching) {
    EXPECT_GE(BlockCache::outstanding() - before, 2 * 64);
  }
  for (auto& t : timers) t->cancel();
  io.poll();
  EXPECT_EQ(ended, 64);
  EXPECT_EQ(BlockCache::outstanding(), before);
}

}  // namespace
}  // namespace sag::base
