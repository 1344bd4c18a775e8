// RedisAffinityStore: replicas sharing entries through a real redis-server
// (tests/config/redis/redis_test_support.h). Each "replica" is a RedisClient and
// a store of its own, as two gateway processes would have.
#include "affinity/store/redis_affinity_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "tests/config/redis/redis_test_support.h"

namespace sag::affinity {
namespace {

using namespace std::chrono_literals;
namespace testing = redis::testing;
using redis::RedisClient;
using redis::RedisReply;
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

// The Redis key of an affinity key for stores without a key secret.
std::string rkey(const std::string& key) {
  static const RedisAffinityStore::KeySealer sealer("");
  return RedisAffinityStore::encode_key("gw:", sealer.seal(key));
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
    const RedisReply r = cli({"GET", rkey(key)});
    if (r.type != RedisReply::Type::kString) return std::nullopt;
    return r.str;
  }
  long long redis_pttl(const std::string& key) {
    const RedisReply r = cli({"PTTL", rkey(key)});
    return r.type == RedisReply::Type::kInteger ? r.integer : -3;
  }
  // Both replicas flushed, then (within 5 s) naming the same server for
  // every key, the one Redis holds.
  bool replicas_agree_with_redis(Replica& a, Replica& b, const std::vector<std::string>& keys) {
    if (!a.store.flush(10s) || !b.store.flush(10s)) return false;
    static const char* const kNames[] = {"s1", "s2", "s3"};
    return eventually([&] {
      for (const auto& k : keys) {
        auto x = a.find(k), y = b.find(k);
        if (!x || x != y || redis_get(k) != kNames[*x]) return false;
      }
      return true;
    }, 5s);
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

// Learn and source keys are sealed: "<backend>\0<kind>\0<value>" becomes
// "<backend>\0<kind in lower case>\0<32 hex digits>", the keyed SipHash of the
// whole key. The expected digests come from tests/support/redis.py's
// affinity_key(), an independent implementation (Python): replicas of
// another build must compute the same keys.
TEST(RedisStoreKeys, LearnAndSourceKeysAreSealedIdenticallyEverywhere) {
  const RedisAffinityStore::KeySealer none(""), secret("s3cret"), other("s3cret2");
  const std::string nul(1, '\0');
  EXPECT_EQ(none.seal(learn_key("abc")), "app" + nul + "l" + nul + "9a8f48dce27f664c1fdce98a37a3bbb9");
  EXPECT_EQ(secret.seal(learn_key("abc")), "app" + nul + "l" + nul + "b3c62226a4248dd55f2a03ef472d6972");
  EXPECT_EQ(none.seal(source_key(127, 0, 0, 1)), "app" + nul + "s" + nul + "cbe61222c87c0abe8a01e3a468701660");
  EXPECT_EQ(RedisAffinityStore::encode_key("gw:", secret.seal(learn_key("abc"))),
            "gw:a:app:l:b3c62226a4248dd55f2a03ef472d6972");
  // The same secret, the same keys; another secret, others.
  EXPECT_EQ(RedisAffinityStore::KeySealer("s3cret").seal(learn_key("abc")), secret.seal(learn_key("abc")));
  EXPECT_NE(other.seal(learn_key("abc")), secret.seal(learn_key("abc")));
  // The value is hashed with its backend and kind.
  const std::string v = std::string("abc");
  EXPECT_NE(secret.seal(learn_key(v, "other")).substr(8), secret.seal(learn_key(v)).substr(6));
  std::string as_source = std::string("app") + nul + "S" + nul + v;
  EXPECT_NE(secret.seal(as_source).substr(6), secret.seal(learn_key(v)).substr(6));
  // Sealing is idempotent; keys not of the form are copied.
  const std::string sealed = secret.seal(learn_key("abc"));
  EXPECT_EQ(secret.seal(sealed), sealed);
  EXPECT_EQ(secret.seal("no separators"), "no separators");
  // A reused buffer is overwritten, whatever it held.
  std::string buf = "something longer than any key sealed here, and then some more";
  secret.seal(learn_key("abc"), buf);
  EXPECT_EQ(buf, sealed);
  // From Redis: sealed keys as they are, an older version's raw ones sealed,
  // the rest refused.
  EXPECT_EQ(secret.accept(sealed), sealed);
  EXPECT_EQ(secret.accept(learn_key("abc")), sealed);
  EXPECT_FALSE(secret.accept("app" + nul + "l" + nul + "abc"));
  EXPECT_FALSE(secret.accept("app" + nul + "l" + nul + "9A8F48DCE27F664C1FDCE98A37A3BBB9"));
  EXPECT_FALSE(secret.accept("app" + nul + "1" + nul + "9a8f48dce27f664c1fdce98a37a3bbb9"));
  EXPECT_FALSE(secret.accept("app"));
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
  // b's start-up scan done first: a key it read there and heard announced
  // too would be counted twice.
  ASSERT_TRUE(b.store.warm_up(10s));
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
  server_.cli({"SET", "gw:a:app:l:not-a-digest", "s1"});
  Replica c(server_, {{"app", {"s1", "s2"}}});
  ASSERT_TRUE(c.store.warm_up(10s));
  EXPECT_EQ(c.find(learn_key("k1")), 0u);
  EXPECT_FALSE(c.find(learn_key("k3")));
  EXPECT_EQ(c.store.stats().loaded, 1u);
  EXPECT_EQ(c.store.stats().ignored, 5u);  // k3, kx, garbage, %zz, not-a-digest
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
  ASSERT_EQ(cli({"SET", rkey(k), "s1", "PX", "1800000"}).type,
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
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back(learn_key("c" + std::to_string(i)));
  EXPECT_TRUE(replicas_agree_with_redis(a, b, keys));
}

// Parallel first connections on two replicas: both claim each source key
// for another server at once. Redis keeps the first claim it applied; the
// replica that lost adopts it, so both end up naming the same server, the
// one in Redis, and the winner's entry is never overwritten.
TEST_F(RedisStoreTest, ClaimsOnTwoReplicasSettleOnTheFirstRedisApplied) {
  Replica a(server_, kAbc);
  Replica b(server_, kAbc);
  ASSERT_TRUE(a.client.wait_connected(10s));
  ASSERT_TRUE(b.client.wait_connected(10s));
  constexpr int kKeys = 300;
  auto key = [](int i) { return source_key(10, 1, static_cast<uint8_t>(i / 256), static_cast<uint8_t>(i % 256)); };
  std::vector<ServerId> from_a(kKeys), from_b(kKeys);
  std::thread ta([&] {
    for (int i = 0; i < kKeys; ++i) from_a[i] = a.store.claim(key(i), 0, Duration(60000), a.now());
  });
  std::thread tb([&] {
    for (int i = 0; i < kKeys; ++i) from_b[i] = b.store.claim(key(i), 1, Duration(60000), b.now());
  });
  ta.join();
  tb.join();
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back(key(i));
  EXPECT_TRUE(replicas_agree_with_redis(a, b, keys));
  // A claim answered from the local copy names what it already held: a
  // replica that heard the other's entry first answered with it at once.
  for (int i = 0; i < kKeys; ++i) {
    EXPECT_TRUE(from_a[i] == 0 || from_a[i] == 1);
    EXPECT_TRUE(from_b[i] == 0 || from_b[i] == 1);
  }
  // Later claims agree everywhere.
  for (int i = 0; i < kKeys; ++i) {
    const ServerId owner = *a.find(key(i));
    EXPECT_EQ(a.store.claim(key(i), 2, Duration(60000), a.now()), owner);
    EXPECT_EQ(b.store.claim(key(i), 2, Duration(60000), b.now()), owner);
  }
  EXPECT_GT(b.store.stats().written + a.store.stats().written, 0u);

  // Redis has an entry this replica never heard of (its announcement lost):
  // the claim leaves Redis as it is and the replica takes Redis's server.
  const std::string unheard = source_key(10, 2, 0, 1);
  cli({"SET", rkey(unheard), "s3", "PX", "60000"});
  EXPECT_EQ(a.store.claim(unheard, 0, Duration(60000), a.now()), 0u);  // the local answer, for now
  ASSERT_TRUE(a.store.flush(5s));
  EXPECT_EQ(redis_get(unheard), "s3");
  EXPECT_TRUE(eventually([&] { return a.find(unheard) == std::optional<ServerId>(2); }, 5s));
  EXPECT_GT(redis_pttl(unheard), 50000);
}

// Nothing of a learned id or a client address reaches Redis: not its keys,
// not the values, not the announcements; replicas with the same secret
// share the entries, a replica with another secret sees none of them.
TEST_F(RedisStoreTest, RedisHoldsNoSessionIdOrClientAddress) {
  RedisAffinityStore::Options o;
  o.key_secret = "shared secret";
  Replica a(server_, kAbc, o);
  Replica b(server_, kAbc, o);
  RedisAffinityStore::Options o2;
  o2.key_secret = "another secret";
  Replica c(server_, kAbc, o2);
  ASSERT_TRUE(a.client.wait_connected(10s));
  ASSERT_TRUE(b.client.wait_connected(10s));
  ASSERT_TRUE(c.client.wait_connected(10s));
  std::vector<std::string> announced;
  std::mutex mu;
  RedisClient listener(testing::redis_config(server_), {});
  listener.subscribe("gw:affinity", [&](std::string_view m) {
    std::lock_guard lock(mu);
    announced.emplace_back(m);
  });
  listener.start();
  ASSERT_TRUE(listener.wait_connected(10s));

  const std::string session = "JSESSION-5f3a9c";
  a.store.put(learn_key(session), 1, Duration(60000), a.now());
  a.store.put(source_key(192, 0, 2, 77), 2, Duration(60000), a.now());
  ASSERT_TRUE(a.store.flush(5s));  // (else the refresh joins the queued put)
  a.store.refresh(learn_key(session), 1, Duration(60000), a.now() + 20s);  // due: written again
  ASSERT_TRUE(a.store.flush(5s));
  ASSERT_TRUE(eventually([&] { return b.find(learn_key(session)) == 1u && b.find(source_key(192, 0, 2, 77)) == 2u; },
                         2s));
  EXPECT_EQ(a.store.redis_key(learn_key(session)), b.store.redis_key(learn_key(session)));
  EXPECT_NE(a.store.redis_key(learn_key(session)), c.store.redis_key(learn_key(session)));
  // C (another secret) applies the announcements under keys it never asks for.
  EXPECT_FALSE(c.find(learn_key(session)));
  EXPECT_FALSE(c.find(source_key(192, 0, 2, 77)));

  const RedisReply keys = cli({"KEYS", "*"});
  ASSERT_EQ(keys.type, RedisReply::Type::kArray);
  std::vector<std::string> seen;
  for (const auto& k : keys.elements) seen.push_back(k.str);
  EXPECT_NE(std::find(seen.begin(), seen.end(), a.store.redis_key(learn_key(session))), seen.end());
  EXPECT_NE(std::find(seen.begin(), seen.end(), a.store.redis_key(source_key(192, 0, 2, 77))), seen.end());
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return announced.size() >= 3;  // C, C, R
  }, 2s));
  {
    std::lock_guard lock(mu);
    for (const auto& m : announced) seen.push_back(m);
  }
  const std::string addr_bytes = std::string("\xc0\x00\x02\x4d", 4);
  for (const auto& text : seen) {
    EXPECT_EQ(text.find("JSESSION"), std::string::npos) << text;
    EXPECT_EQ(text.find("5f3a9c"), std::string::npos) << text;
    EXPECT_EQ(text.find(addr_bytes), std::string::npos) << text;
    EXPECT_EQ(text.find("%C0%00%02M"), std::string::npos) << text;
    EXPECT_EQ(text.find(":L:"), std::string::npos) << text;
    EXPECT_EQ(text.find(":S:"), std::string::npos) << text;
  }
  listener.stop();
}

// Keys an older version wrote raw (a rolling upgrade) are sealed as they
// are read: by the warm-up and from announcements; never written back raw.
TEST_F(RedisStoreTest, RawKeysOfAnOlderVersionAreSealedAsRead) {
  ASSERT_EQ(cli({"SET", "gw:a:app:L:old-session", "s2", "PX", "60000"}).type, RedisReply::Type::kStatus);
  ASSERT_EQ(cli({"SET", "gw:a:app:S:4%7F%00%00%05", "s3", "PX", "60000"}).type, RedisReply::Type::kStatus);
  Replica a(server_, kAbc);
  ASSERT_TRUE(a.store.warm_up(10s));
  EXPECT_EQ(a.store.stats().loaded, 2u);
  EXPECT_EQ(a.find(learn_key("old-session")), 1u);
  EXPECT_EQ(a.find(source_key(127, 0, 0, 5)), 2u);
  // An older replica's announcement.
  cli({"SET", "gw:a:app:L:announced", "s1", "PX", "60000"});
  cli({"PUBLISH", "gw:affinity", "C 0123456789abcdef 60000 gw:a:app:L:announced s1"});
  EXPECT_TRUE(eventually([&] { return a.find(learn_key("announced")) == 0u; }, 2s));
  cli({"PUBLISH", "gw:affinity", "D 0123456789abcdef 0 gw:a:app:L:announced"});
  EXPECT_TRUE(eventually([&] { return !a.find(learn_key("announced")); }, 2s));
  // A due refresh writes the sealed key.
  a.store.refresh(learn_key("old-session"), 1, Duration(60000), a.now() + 20s);
  ASSERT_TRUE(a.store.flush(5s));
  EXPECT_EQ(redis_get(learn_key("old-session")), "s2");
  EXPECT_EQ(cli({"EXISTS", "gw:a:app:L:old-session"}).integer, 1);  // left to expire
}

// FLUSHALL under a live connection (no reconnection to tell): the replica's
// marker is gone at its next check (1 s) and every live entry is written
// back, within 3 s; a replica started afterwards finds them all.
TEST_F(RedisStoreTest, AFlushIsNoticedAndRefilledWithin3s) {
  std::vector<std::string> lines;
  std::mutex mu;
  RedisAffinityStore::Options o;
  o.log = [&](bool, const std::string& line) {
    std::lock_guard lock(mu);
    lines.push_back(line);
  };
  Replica a(server_, kAbc, o);
  ASSERT_TRUE(a.client.wait_connected(10s));
  for (int i = 0; i < 50; ++i)
    a.store.put(learn_key("f" + std::to_string(i)), static_cast<ServerId>(i % 3), Duration(60000), a.now());
  a.store.put(source_key(10, 1, 2, 3), 2, Duration(60000), a.now());
  ASSERT_TRUE(a.store.flush(5s));
  std::this_thread::sleep_for(1500ms);  // the marker was checked at least once
  EXPECT_EQ(a.store.stats().flushes, 0u);
  const uint64_t errors = a.store.stats().errors;
  EXPECT_EQ(errors, 0u);

  ASSERT_EQ(cli({"FLUSHALL"}).type, RedisReply::Type::kStatus);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(eventually([&] {
    for (int i = 0; i < 50; ++i)
      if (!redis_get(learn_key("f" + std::to_string(i)))) return false;
    return redis_get(source_key(10, 1, 2, 3)).has_value();
  }, 3s)) << "not refilled within 3 s of the FLUSHALL";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_EQ(a.store.stats().flushes, 1u);
  EXPECT_EQ(a.store.stats().errors, errors + 1);
  EXPECT_GE(a.store.stats().refilled, 51u);
  EXPECT_LE(redis_pttl(learn_key("f0")), 60000);
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("gone from Redis"), std::string::npos) << lines[0];
  }
  Replica fresh(server_, {{"app", {"s3", "s2", "s1"}}});
  ASSERT_TRUE(fresh.store.warm_up(10s));
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(fresh.find(learn_key("f" + std::to_string(i))), static_cast<ServerId>(2 - i % 3)) << i;
  EXPECT_EQ(fresh.find(source_key(10, 1, 2, 3)), 0u);
  // Quiet again: nothing more is refilled or counted.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(a.store.stats().flushes, 1u);
  EXPECT_EQ(fresh.store.stats().flushes, 0u);
}

// A Redis never reached counts errors too (about one per attempt, one a
// second once backed off), with no change to write.
TEST_F(RedisStoreTest, ErrorsCountWhileRedisWasNeverReachable) {
  server_.kill();
  RedisAffinityStore::Options o;
  o.check_every = 250ms;
  Replica c(server_, kAbc, o);
  EXPECT_TRUE(eventually([&] { return c.store.stats().errors >= 3 && c.on_error.load() >= 3; }, 3s))
      << c.store.stats().errors;
  // Then up: no more.
  ASSERT_TRUE(server_.start());
  ASSERT_TRUE(c.client.wait_connected(10s));
  std::this_thread::sleep_for(300ms);
  const uint64_t errors = c.store.stats().errors;
  std::this_thread::sleep_for(800ms);
  EXPECT_EQ(c.store.stats().errors, errors);
}

}  // namespace
}  // namespace sag::affinity
