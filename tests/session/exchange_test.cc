// Exchange::reset (session/exchange.h): a reset exchange is a fresh one in
// every member, and keeps its strings' storage.
#include "session/exchange.h"

#include <gtest/gtest.h>

#include <memory>

namespace sag::session {
namespace {

TEST(ExchangeTest, ResetIsAFreshExchange) {
  // A member added to Exchange must be reset in reset() and set below; the
  // size tells when one was.
  EXPECT_EQ(sizeof(Exchange), 232u) << "Exchange changed: update reset() and this test";
  Exchange x;
  x.start = Exchange::Clock::now();
  x.start_wall = std::chrono::system_clock::now();
  x.head_done = Exchange::Clock::now();
  x.tc = x.tr = x.tw = 5;
  x.status = 502;
  x.bytes = 99;
  x.server = "s1";
  x.blamed = "s2";
  affinity::Server* some = reinterpret_cast<affinity::Server*>(&x);
  x.answered_by = some;
  x.backend = reinterpret_cast<const BackendRuntime*>(&x);
  auto held = std::make_shared<int>(1);
  x.gen = std::shared_ptr<const WorkerGeneration>(held, nullptr);
  x.persist = affinity::PersistOutcome::kCookieHit;
  x.retries = 2;
  x.termination = Termination::kServerClose;
  x.method.assign(100, 'M');
  x.path.assign(100, 'P');
  x.protocol = "HTTP/1.0";
  x.logged = true;
  const auto method_storage = x.method.data();

  x.reset();
  const Exchange fresh;
  EXPECT_EQ(x.start, fresh.start);
  EXPECT_EQ(x.start_wall, fresh.start_wall);
  EXPECT_EQ(x.head_done, fresh.head_done);
  EXPECT_EQ(x.tc, fresh.tc);
  EXPECT_EQ(x.tr, fresh.tr);
  EXPECT_EQ(x.tw, fresh.tw);
  EXPECT_EQ(x.status, fresh.status);
  EXPECT_EQ(x.bytes, fresh.bytes);
  EXPECT_EQ(x.server, fresh.server);
  EXPECT_EQ(x.blamed, fresh.blamed);
  EXPECT_EQ(x.answered_by, fresh.answered_by);
  EXPECT_EQ(x.backend, fresh.backend);
  EXPECT_EQ(x.gen, fresh.gen);
  EXPECT_EQ(held.use_count(), 1) << "the generation is let go";
  EXPECT_EQ(x.persist, fresh.persist);
  EXPECT_EQ(x.retries, fresh.retries);
  EXPECT_EQ(x.termination, fresh.termination);
  EXPECT_EQ(x.method, fresh.method);
  EXPECT_EQ(x.path, fresh.path);
  EXPECT_EQ(x.protocol, fresh.protocol);
  EXPECT_EQ(x.logged, fresh.logged);
  EXPECT_EQ(x.method.data(), method_storage) << "storage kept across requests";
}

}  // namespace
}  // namespace sag::session
