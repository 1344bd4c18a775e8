// RedisAffinityStore: replicas sharing entries through a real redis-server
// (tests/affinity/redis_test_support.h). Each "replica" is a RedisClient and
// a store of its own, as two gateway processes would have.
#include "affinity/redis_affinity_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "tests/affinity/redis_test_support.h"

namespace sag::affinity {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::RedisServer;
using Names = std::vector<RedisAffinityStore::BackendServers>;

const Names kAbc = {{"app", {"s1", "s2", "s3"}}, {"other", {"x"}}};

std::string learn_key(const std::string& value, const std::string& backend = "app") {
  return backend + std::string(1, '\0') + "L" + std::string(1, '\0') + value;
}
std::string source_key(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  std::string k = std::string("app") + '\0' + 'S' + '\0' + '4';
  for (uint8_t x : {a, b, c, d}) k += static_cast<char>(x);
  return k;
}

struct Replica {
  Replica(const RedisServer& server, Names names, RedisAffinityStore::Options options = {})
      : client(testing::redis_config(server), {}),
        store(client, std::move(names), options, clock, [this] { ++on_error; }) {
    client.start();
  }
  TimePoint now() const { return clock.steady_now(); }
  std::optional<ServerId> find(const std::string& key) { return store.find(key, now()); }

  SystemClock clock;
  std::atomic<uint64_t> on_error{0};
  RedisClient client;
  RedisAffinityStore store;
};

class RedisStoreTest : public testing::RedisTest {
 protected:
  std::optional<std::string> redis_get(const std::string& key) {
    const RedisReply r = cli({"GET", RedisAffinityStore::encode_key("gw:", key)});
    if (r.type != RedisReply::Type::kString) return std::nullopt;
    return r.str;
  }
  long long redis_pttl(const std::string& key) {
    const RedisReply r = cli({"PTTL", RedisAffinityStore::encode_key("gw:", key)});
    return r.type == RedisReply::Type::kInteger ? r.integer : -3;
  }
};

TEST(RedisStoreKeys, EncodingIsPrintableUnambiguousAndReversible) {
  const std::string learn = learn_key("ab:c%d e\x01/+=");
  const std::string enc = RedisAffinityStore::encode_key("gw:", learn);
  EXPECT_EQ(enc, "gw:a:app:L:ab%3Ac%25d%20e%01/+=");
  EXPECT_EQ(RedisAffinityStore::decode_key("gw:", enc), learn);
  const std::string src = source_key(10, 0, 0, 7);  // NUL bytes in the value
  const std::string enc_src = RedisAffinityStore::encode_key("gw:", src);
  EXPECT_EQ(enc_src, "gw:a:app:S:4%0A%00%00%07");
  EXPECT_EQ(RedisAffinityStore::decode_key("gw:", enc_src), src);
  // A backend name with the separator in it stays apart from the kind.
  const std::string odd = std::string("a:b") + '\0' + 'L' + '\0' + "v";
  EXPECT_EQ(RedisAffinityStore::encode_key("p", odd), "pa:a%3Ab:L:v");
  EXPECT_EQ(RedisAffinityStore::decode_key("p", "pa:a%3Ab:L:v"), odd);
  // Not ours: other prefixes, other namespaces, bad escapes, extra parts.
  EXPECT_FALSE(RedisAffinityStore::decode_key("gw:", "xx:a:app:L:v"));
  EXPECT_FALSE(RedisAffinityStore::decode_key("gw:", "gw:admin:app"));
  EXPECT_FALSE(RedisAffinityStore::decode_key("gw:", "gw:a:app:L:%zz"));
  EXPECT_FALSE(RedisAffinityStore::decode_key("gw:", "gw:a:app:L:v%4"));
  EXPECT_FALSE(RedisAffinityStore::decode_key("gw:", "gw:a:app:L:v:w"));
  EXPECT_FALSE(RedisAffinityStore::decode_key("gw:", "gw:a:app:L:v w"));
}

TEST_F(RedisStoreTest, APutIsVisibleOnTheOtherReplicaWithin100msByServerName) {
  Replica a(server_, kAbc);
  // B lists the same servers in another order: ids differ, names agree.
  Replica b(server_, {{"app", {"s3", "s1", "s2"}}});
  ASSERT_TRUE(a.client.wait_connected(10s));
  ASSERT_TRUE(b.client.wait_connected(10s));
  std::vector<double> delays_ms;
  for (int i = 0; i < 50; ++i) {
    const std::string k = learn_key("session-" + std::to_string(i));
    const auto t0 = std::chrono::steady_clock::now();
    a.store.put(k, 1, Duration(60000), a.now());  // s2 on A
    EXPECT_EQ(a.find(k), 1u);                     // local at once
    ASSERT_TRUE(eventually([&] { return b.find(k) == 2u; }, 2s)) << "key " << i;  // s2 on B
    delays_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(delays_ms.begin(), delays_ms.end());
  EXPECT_LT(delays_ms[delays_ms.size() / 2], 100.0) << "median replication delay";
  EXPECT_EQ(redis_get(learn_key("session-7")), "s2");

  // Source entries (binary values) and erasure travel the same way.
  const std::string src = source_key(127, 0, 0, 9);
  b.store.put(src, 0, Duration(60000), b.now());  // s3 on B
  EXPECT_TRUE(eventually([&] { return a.find(src) == 2u; }, 2s));
  a.store.erase(learn_key("session-3"));
  EXPECT_TRUE(eventually([&] { return !b.find(learn_key("session-3")); }, 2s));
  EXPECT_TRUE(eventually([&] { return !redis_get(learn_key("session-3")); }, 2s));
  EXPECT_EQ(a.store.stats().errors, 0u);
  EXPECT_GE(b.store.stats().applied, 50u);
}

TEST_F(RedisStoreTest, UnknownServersAndBackendsAreIgnored) {
  Replica a(server_, kAbc);
  Replica b(server_, {{"app", {"s1", "s2"}}});  // no s3, no backend "other"
  ASSERT_TRUE(a.client.wait_connected(10s));
  ASSERT_TRUE(b.client.wait_connected(10s));
  a.store.put(learn_key("k3"), 2, Duration(60000), a.now());          // s3
  a.store.put(learn_key("kx", "other"), 0, Duration(60000), a.now());  // other/x
  a.store.put(learn_key("k1"), 0, Duration(60000), a.now());          // s1: the marker
  ASSERT_TRUE(eventually([&] { return b.find(learn_key("k1")) == 0u; }, 2s));
  EXPECT_FALSE(b.find(learn_key("k3")));
  EXPECT_FALSE(b.find(learn_key("kx", "other")));
  EXPECT_EQ(b.store.stats().ignored, 2u);
  // Garbage in Redis is ignored by a warm-up too.
  server_.cli({"SET", "gw:a:app:L:garbage", "nosuch"});
  server_.cli({"SET", "gw:a:%zz", "s1"});
  Replica c(server_, {{"app", {"s1", "s2"}}});
  ASSERT_TRUE(c.store.warm_up(10s));
  EXPECT_EQ(c.find(learn_key("k1")), 0u);
  EXPECT_FALSE(c.find(learn_key("k3")));
  EXPECT_EQ(c.store.stats().loaded, 1u);
  EXPECT_EQ(c.store.stats().ignored, 4u);  // k3, kx, garbage, %zz
}

TEST_F(RedisStoreTest, RemainingTtlIsTheSameEverywhere) {
  Replica a(server_, kAbc);
  Replica b(server_, kAbc);
  ASSERT_TRUE(a.client.wait_connected(10s));
  ASSERT_TRUE(b.client.wait_connected(10s));
  const std::string k = learn_key("ttl");
  const TimePoint t0 = a.now();
  a.store.put(k, 2, Duration(10000), t0);
  ASSERT_TRUE(eventually([&] { return b.find(k).has_value(); }, 2s));
  const long long pttl = redis_pttl(k);
  EXPECT_GT(pttl, 8000);
  EXPECT_LE(pttl, 10000);
  // B's copy expires when A's does (to the replication delay).
  EXPECT_TRUE(b.store.find(k, t0 + 9500ms).has_value());
  EXPECT_FALSE(b.store.find(k, t0 + 10500ms).has_value());
  EXPECT_FALSE(a.store.find(k, t0 + 10001ms).has_value());
  // ttl 0: no expiry, in Redis either.
  a.store.put(learn_key("forever"), 0, Duration(0), a.now());
  ASSERT_TRUE(eventually([&] { return b.find(learn_key("forever")).has_value(); }, 2s));
  EXPECT_EQ(redis_pttl(learn_key("forever")), -1);
  EXPECT_TRUE(b.store.find(learn_key("forever"), b.now() + std::chrono::hours(1000)).has_value());
}

// The same pin put again (a server that sets its session cookie on every
// response) is throttled like a refresh.
TEST_F(RedisStoreTest, RepeatedPutsAreCoalescedAndNeverUndoAChange) {
  Replica a(server_, kAbc);
  Replica b(server_, kAbc);
  ASSERT_TRUE(a.client.wait_connected(10s));
  ASSERT_TRUE(b.client.wait_connected(10s));
  const std::string k = learn_key("hot");
  for (int i = 0; i < 200; ++i) a.store.put(k, 1, Duration(1800000), a.now());
  ASSERT_TRUE(a.store.flush(5s));
  EXPECT_EQ(a.store.stats().written, 1u) << "re-puts within min(ttl/4, 60s) are not written";
  // One past the slack is written, and carries the TTL over.
  a.store.put(k, 1, Duration(1800000), a.now() + 61s);
  ASSERT_TRUE(a.store.flush(5s));
  EXPECT_EQ(a.store.stats().written, 2u);
  EXPECT_GT(redis_pttl(k), 1800000);  // 30 min counted from 61 s ahead
  // B moves the session (redispatch): A follows.
  ASSERT_TRUE(eventually([&] { return b.find(k) == 1u; }, 2s));
  b.store.put(k, 2, Duration(1800000), b.now());
  ASSERT_TRUE(eventually([&] { return a.find(k) == 2u; }, 2s));
  EXPECT_EQ(redis_get(k), "s3");
}

// refresh() (every learn or source hit): within the slack nothing is queued
// (the worker decides from the local expiry); a due one extends the local
// entry, Redis's TTL and the other replica's copy, once.
TEST_F(RedisStoreTest, RefreshesWithinTheSlackQueueNothingAndADueOneExtendsEverywhere) {
  Replica a(server_, kAbc);
  Replica b(server_, kAbc);
  ASSERT_TRUE(a.client.wait_connected(10s));
  ASSERT_TRUE(b.client.wait_connected(10s));
  const std::string k = learn_key("hit");
  const Duration ttl = 30min;
  const TimePoint t0 = a.now();
  a.store.put(k, 1, ttl, t0);
  ASSERT_TRUE(a.store.flush(5s));
  ASSERT_TRUE(eventually([&] { return b.store.stats().applied == 1; }, 2s));
  ASSERT_EQ(a.store.stats().written, 1u);

  for (int i = 0; i < 1000; ++i) a.store.refresh(k, 1, ttl, t0 + std::chrono::milliseconds(59 * i));  // < 60 s
  EXPECT_EQ(a.store.stats().refreshes, 0u);
  ASSERT_TRUE(a.store.flush(5s));
  EXPECT_EQ(a.store.stats().written, 1u);
  EXPECT_TRUE(a.store.find(k, t0 + ttl - 1ms).has_value());

  const TimePoint t1 = t0 + 61s;  // the new expiry is 61 s past the old one
  a.store.refresh(k, 1, ttl, t1);
  a.store.refresh(k, 1, ttl, t1 + 1s);  // within the slack of the new expiry
  EXPECT_EQ(a.store.stats().refreshes, 1u);
  ASSERT_TRUE(a.store.flush(5s));
  EXPECT_EQ(a.store.stats().written, 2u);
  EXPECT_GT(redis_pttl(k), 1800000);  // 30 min counted from 61 s ahead
  EXPECT_EQ(redis_get(k), "s2");
  EXPECT_EQ(a.store.find(k, t0 + ttl + 30s), 1u);
  ASSERT_TRUE(eventually([&] { return b.store.stats().applied == 2; }, 2s));
  EXPECT_EQ(b.store.find(k, t0 + ttl + 30s), 1u);
  EXPECT_EQ(a.store.stats().errors, 0u);
}

// A refresh never undoes a change made elsewhere: not when the change was
// applied here first (nothing is queued), nor when Redis has it and this
// replica doesn't (the conditional script leaves it).
TEST_F(RedisStoreTest, ARefreshNeverOverwritesAnotherServer) {
  Replica a(server_, kAbc);
  Replica b(server_, kAbc);
  ASSERT_TRUE(a.client.wait_connected(10s));
  ASSERT_TRUE(b.client.wait_connected(10s));
  const std::string k = learn_key("moved");
  const Duration ttl = 30min;
  a.store.put(k, 1, ttl, a.now());  // s2
  ASSERT_TRUE(eventually([&] { return b.find(k) == 1u; }, 2s));
  b.store.put(k, 2, ttl, b.now());  // B redispatches to s3
  ASSERT_TRUE(eventually([&] { return a.find(k) == 2u; }, 2s));

  // A worker of A that found s2 before B's change arrived refreshes late.
  a.store.refresh(k, 1, ttl, a.now() + 61s);
  EXPECT_EQ(a.store.stats().refreshes, 0u);
  EXPECT_EQ(a.find(k), 2u);

  // Redis moved on to s1 and the announcement never came: A's due refresh
  // of s3 reaches Redis and changes nothing there, nor on B.
  ASSERT_EQ(cli({"SET", RedisAffinityStore::encode_key("gw:", k), "s1", "PX", "1800000"}).type,
            RedisReply::Type::kStatus);
  const uint64_t b_applied = b.store.stats().applied;
  a.store.refresh(k, 2, ttl, a.now() + 61s);
  EXPECT_EQ(a.store.stats().refreshes, 1u);
  ASSERT_TRUE(a.store.flush(5s));
  EXPECT_EQ(redis_get(k), "s1");
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(b.store.stats().applied, b_applied);
  EXPECT_EQ(b.find(k), 2u);
}

TEST_F(RedisStoreTest, WarmUpLoadsWhatRedisHolds) {
  {
    Replica a(server_, kAbc);
    ASSERT_TRUE(a.client.wait_connected(10s));
    for (int i = 0; i < 2500; ++i)  // several SCAN batches
      a.store.put(learn_key("w" + std::to_string(i)), static_cast<ServerId>(i % 3), Duration(60000), a.now());
    a.store.put(learn_key("short"), 0, Duration(1500), a.now());
    ASSERT_TRUE(a.store.flush(10s));
  }  // A is gone (a restart)
  server_.cli({"SET", "gw:admin:something", "x"});  // someone else's key under the prefix
  Replica c(server_, {{"app", {"s3", "s2", "s1"}}});
  ASSERT_TRUE(c.store.warm_up(10s));
  EXPECT_EQ(c.store.stats().loaded, 2501u);
  for (int i = 0; i < 2500; i += 97)
    EXPECT_EQ(c.find(learn_key("w" + std::to_string(i))), static_cast<ServerId>(2 - i % 3)) << i;
  // Loaded with the TTL Redis had left, not a fresh one.
  EXPECT_TRUE(c.find(learn_key("short")).has_value());
  EXPECT_FALSE(c.store.find(learn_key("short"), c.now() + 1600ms).has_value());
  EXPECT_TRUE(c.store.find(learn_key("w1"), c.now() + 50s).has_value());
  EXPECT_FALSE(c.store.find(learn_key("w1"), c.now() + 61s).has_value());
}

TEST_F(RedisStoreTest, WarmUpGivesUpWhenRedisIsDownAndCatchesUpLater) {
  server_.kill();
  Replica c(server_, kAbc);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(c.store.warm_up(500ms));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  c.store.put(learn_key("offline"), 1, Duration(60000), c.now());
  EXPECT_EQ(c.find(learn_key("offline")), 1u);  // served locally
  EXPECT_TRUE(eventually([&] { return c.store.stats().errors >= 1 && c.on_error.load() >= 1; }, 2s));
  ASSERT_TRUE(server_.start());
  EXPECT_TRUE(c.store.warm_up(10s));
  EXPECT_TRUE(eventually([&] { return redis_get(learn_key("offline")) == "s2"; }, 3s));
}

// Redis dies (and comes back empty): requests keep their entries, changes
// made meanwhile reach Redis and the other replica when it returns, and
// Redis is refilled with every live entry.
TEST_F(RedisStoreTest, OutageQueuesWritesBackAndRefillsAnEmptyRedis) {
  Replica a(server_, kAbc);
  Replica b(server_, kAbc);
  ASSERT_TRUE(a.client.wait_connected(10s));
  ASSERT_TRUE(b.client.wait_connected(10s));
  for (int i = 0; i < 20; ++i) a.store.put(learn_key("before" + std::to_string(i)), 0, Duration(60000), a.now());
  ASSERT_TRUE(eventually([&] { return b.find(learn_key("before19")).has_value(); }, 2s));

  server_.kill();
  ASSERT_TRUE(eventually([&] { return !a.client.connected() && !b.client.connected(); }, 5s));
  const uint64_t errors_before = a.store.stats().errors;
  for (int i = 0; i < 5; ++i) a.store.put(learn_key("during" + std::to_string(i)), 2, Duration(60000), a.now());
  b.store.put(learn_key("before3"), 1, Duration(60000), b.now());  // B moves one meanwhile
  EXPECT_EQ(a.find(learn_key("during4")), 2u);
  EXPECT_EQ(b.find(learn_key("before7")), 0u);  // B still serves what it had
  EXPECT_TRUE(eventually([&] { return a.store.stats().errors >= errors_before + 5; }, 2s));

  ASSERT_TRUE(server_.start());  // empty: no persistence
  const auto back = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] {
    for (int i = 0; i < 20; ++i)
      if (!redis_get(learn_key("before" + std::to_string(i)))) return false;
    for (int i = 0; i < 5; ++i)
      if (redis_get(learn_key("during" + std::to_string(i))) != "s3") return false;
    return true;
  }, 3s)) << "Redis was not refilled within 3 s";
  EXPECT_TRUE(eventually([&] { return b.find(learn_key("during4")) == 2u; }, 3s));
  EXPECT_LT(std::chrono::steady_clock::now() - back, 3500ms);
  EXPECT_TRUE(eventually([&] { return a.find(learn_key("before3")) == 1u; }, 3s));
  EXPECT_EQ(redis_get(learn_key("before3")), "s2");
  EXPECT_GE(a.store.stats().refilled + b.store.stats().refilled, 19u);
  EXPECT_LE(redis_pttl(learn_key("before0")), 60000);
}

TEST_F(RedisStoreTest, QueueBoundDropsAreCountedAndRefillStillRestoresThem) {
  RedisAffinityStore::Options o;
  o.max_pending = 3;
  Replica a(server_, kAbc, o);
  ASSERT_TRUE(a.client.wait_connected(10s));
  server_.kill();
  ASSERT_TRUE(eventually([&] { return !a.client.connected(); }, 5s));
  for (int i = 0; i < 10; ++i) a.store.put(learn_key("q" + std::to_string(i)), 1, Duration(60000), a.now());
  EXPECT_TRUE(eventually([&] { return a.store.stats().dropped == 7; }, 2s)) << a.store.stats().dropped;
  ASSERT_TRUE(server_.start());
  EXPECT_TRUE(eventually([&] {
    for (int i = 0; i < 10; ++i)
      if (redis_get(learn_key("q" + std::to_string(i))) != "s2") return false;
    return true;
  }, 3s));
}

// Both replicas change the same keys at the same moment: they end up
// agreeing with each other and with Redis.
TEST_F(RedisStoreTest, ConcurrentChangesConverge) {
  Replica a(server_, kAbc);
  Replica b(server_, kAbc);
  ASSERT_TRUE(a.client.wait_connected(10s));
  ASSERT_TRUE(b.client.wait_connected(10s));
  constexpr int kKeys = 300;
  for (int round = 0; round < 3; ++round) {
    std::thread ta([&] {
      for (int i = 0; i < kKeys; ++i) a.store.put(learn_key("c" + std::to_string(i)), 0, Duration(60000), a.now());
    });
    std::thread tb([&] {
      for (int i = 0; i < kKeys; ++i) b.store.put(learn_key("c" + std::to_string(i)), 1, Duration(60000), b.now());
    });
    ta.join();
    tb.join();
  }
  ASSERT_TRUE(a.store.flush(10s));
  ASSERT_TRUE(b.store.flush(10s));
  const char* names[] = {"s1", "s2", "s3"};
  EXPECT_TRUE(eventually([&] {
    for (int i = 0; i < kKeys; ++i) {
      const std::string k = learn_key("c" + std::to_string(i));
      auto x = a.find(k), y = b.find(k);
      if (!x || x != y || redis_get(k) != names[*x]) return false;
    }
    return true;
  }, 5s));
}

}  // namespace
}  // namespace sag::affinity
