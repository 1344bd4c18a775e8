// TicketKeyShare against a real redis-server, started by each test on a
// free loopback port (tests/config/redis/redis_test_support.h; the test
// fails when redis-server is not installed).
#include "tls/ticket_key_share.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/redis/redis_client.h"
#include "tests/config/redis/redis_test_support.h"
#include "tls/ticket_keys.h"

namespace sag::tls {
namespace {

using namespace std::chrono_literals;
namespace testing = redis::testing;
using redis::RedisClient;
using redis::RedisReply;
using testing::eventually;
using testing::RedisServer;

// A replica's view: its own Redis client and TicketKeyShare, and the keys
// last handed to its sink.
class Replica {
 public:
  Replica(const RedisServer& redis, TicketKeyShare::Options options) {
    client_ = std::make_unique<RedisClient>(testing::redis_config(redis, options.key_prefix), nullptr);
    shared_ = std::make_unique<TicketKeyShare>(
        *client_, std::move(options),
        [this](const std::string& current, const std::vector<std::string>& decrypt) {
          std::lock_guard lock(mu_);
          current_ = current;
          decrypt_ = decrypt;
          ++sets_;
        },
        nullptr);
  }
  ~Replica() {
    client_->stop();  // first: no callback may run once shared_ is gone
    shared_.reset();
  }
  void start() {
    client_->start();
    shared_->start();
  }

  TicketKeyShare& shared() { return *shared_; }
  RedisClient& client() { return *client_; }

  std::string current() {
    std::lock_guard lock(mu_);
    return current_;
  }
  std::vector<std::string> decrypt() {
    std::lock_guard lock(mu_);
    return decrypt_;
  }
  bool decrypts(const std::string& key) {
    auto d = decrypt();
    return std::find(d.begin(), d.end(), key) != d.end();
  }
  int sets() {
    std::lock_guard lock(mu_);
    return sets_;
  }

 private:
  std::unique_ptr<RedisClient> client_;
  std::unique_ptr<TicketKeyShare> shared_;
  std::mutex mu_;
  std::string current_;
  std::vector<std::string> decrypt_;
  int sets_ = 0;
};

std::string hex(const std::string& raw) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

class TicketKeyShareTest : public testing::RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    prefix_ = std::string("t:") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + ":";
  }
  TicketKeyShare::Options options(std::chrono::milliseconds poll = 60s) const {
    TicketKeyShare::Options o;
    o.key_prefix = prefix_;
    o.poll_interval = poll;
    return o;
  }
  std::unique_ptr<Replica> replica(TicketKeyShare::Options o) {
    auto r = std::make_unique<Replica>(server_, std::move(o));
    r->start();
    return r;
  }

  std::string prefix_;
};

TEST_F(TicketKeyShareTest, TicketKeysAgreedByReplicasStartingAtOnce) {
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(round);
    auto o = options();
    o.key_prefix = prefix_ + std::to_string(round) + ":";
    // Both registered and started before either can have connected.
    Replica a(server_, o), b(server_, o);
    a.start();
    b.start();
    ASSERT_TRUE(a.shared().wait_loaded(5s));
    ASSERT_TRUE(b.shared().wait_loaded(5s));
    ASSERT_TRUE(eventually([&] { return a.current() == b.current(); }, 2s));
    const std::string key = a.current();
    ASSERT_EQ(key.size(), TicketKey::kBytes);
    // Next epoch's key made in advance, decrypt-only for now.
    EXPECT_EQ(a.decrypt().size(), 2u);  // the start-up local key and the next epoch's
      const int64_t e = a.shared().epoch_of(std::chrono::system_clock::now());
    const auto stored = cli({"GET", o.key_prefix + "tls:ticket:" + std::to_string(e)});
    if (a.shared().epoch_of(std::chrono::system_clock::now()) == e) {  // not across a 12 h boundary
      EXPECT_EQ(stored.str, "v1:" + hex(key));
      const auto ttl = cli({"PTTL", o.key_prefix + "tls:ticket:" + std::to_string(e)});
      EXPECT_GT(ttl.integer, 3 * 12 * 3600 * 1000LL);
    }
  }
}

// Sleeps until `ms` past the start of the next epoch of `period`.
void align_to_epoch(std::chrono::milliseconds period, std::chrono::milliseconds ms) {
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  const auto next = (now / period + 1) * period;
  std::this_thread::sleep_for(next - now + ms);
}

TEST_F(TicketKeyShareTest, RotationKeepsThePreviousKey) {
  auto o = options();  // no polling: the epoch boundary alone switches
  o.ticket_period = 3s;
  align_to_epoch(o.ticket_period, 200ms);
  auto a = replica(o);
  auto b = replica(o);
  ASSERT_TRUE(a->shared().wait_loaded(5s));
  ASSERT_TRUE(b->shared().wait_loaded(5s));
  const int64_t e = a->shared().epoch_of(std::chrono::system_clock::now());
  ASSERT_TRUE(eventually([&] { return a->current() == b->current(); }, 1s));
  const std::string k0 = a->current();
  const auto next = cli({"GET", prefix_ + "tls:ticket:" + std::to_string(e + 1)});
  ASSERT_EQ(next.type, RedisReply::Type::kString);
  ASSERT_TRUE(eventually([&] { return a->decrypts(k0) == false && a->decrypt().size() == 2; }, 1s));

  align_to_epoch(o.ticket_period, 500ms);
  ASSERT_EQ(a->shared().epoch_of(std::chrono::system_clock::now()), e + 1);
  const std::string k1 = a->current();
  EXPECT_NE(k1, k0);
  EXPECT_EQ(next.str, "v1:" + hex(k1));
  EXPECT_EQ(b->current(), k1);
  EXPECT_TRUE(a->decrypts(k0));
  EXPECT_TRUE(b->decrypts(k0));

  // A replica (re)started now encrypts with k1 and still decrypts k0.
  auto r = replica(o);
  ASSERT_TRUE(r->shared().wait_loaded(5s));
  EXPECT_TRUE(eventually([&] { return r->current() == k1; }, 1s));
  EXPECT_TRUE(r->decrypts(k0));

  // Two rotations: k0 is gone everywhere.
  align_to_epoch(o.ticket_period, 500ms);
  ASSERT_EQ(a->shared().epoch_of(std::chrono::system_clock::now()), e + 2);
  EXPECT_NE(a->current(), k1);
  EXPECT_EQ(a->current(), b->current());
  EXPECT_EQ(a->current(), r->current());
  EXPECT_TRUE(a->decrypts(k1));
  EXPECT_FALSE(a->decrypts(k0));
  EXPECT_FALSE(b->decrypts(k0));
  EXPECT_FALSE(r->decrypts(k0));
}

TEST_F(TicketKeyShareTest, RedisDownAtStartThenAdopted) {
  server_.kill();  // its port stays reserved for the restart below
  auto a = replica(options());
  EXPECT_FALSE(a->shared().wait_loaded(300ms));
  ASSERT_TRUE(eventually([&] { return a->sets() >= 1; }, 2s));
  const std::string local = a->current();
  EXPECT_EQ(local.size(), TicketKey::kBytes);

  ASSERT_TRUE(server_.start());
  ASSERT_TRUE(a->shared().wait_loaded(10s));
  ASSERT_TRUE(eventually([&] { return a->current() != local; }, 2s));
  // Tickets issued under the local key still resume for a while.
  EXPECT_TRUE(a->decrypts(local));
  const int64_t e = a->shared().epoch_of(std::chrono::system_clock::now());
  EXPECT_EQ(cli({"GET", prefix_ + "tls:ticket:" + std::to_string(e)}).str, "v1:" + hex(a->current()));
}

// Redis restarted empty: the keys replicas share are written back, so a
// replica started afterwards still agrees with them.
TEST_F(TicketKeyShareTest, TicketKeysRefilledAfterRedisLosesThem) {
  auto a = replica(options(300ms));
  ASSERT_TRUE(a->shared().wait_loaded(5s));
  // a encrypts with the epoch's key from Redis. (Not "two keys handed to
  // the sink": when Redis answers before a's own start-up key reached the
  // sink, the sink sees Redis's key first and only.)
  const int64_t e = a->shared().epoch_of(std::chrono::system_clock::now());
  ASSERT_TRUE(eventually(
      [&] {
        return cli({"GET", prefix_ + "tls:ticket:" + std::to_string(e)}).str ==
               "v1:" + hex(a->current());
      },
      5s));
  const std::string k = a->current();
  server_.kill();
  ASSERT_TRUE(server_.start());
  auto b = replica(options());
  // b may come up before a has refilled: then b's key wins the SET NX and
  // a adopts it. Either way they converge.
  ASSERT_TRUE(b->shared().wait_loaded(10s));
  EXPECT_TRUE(eventually([&] { return a->current() == b->current(); }, 5s));
  EXPECT_TRUE(a->current() == k || a->decrypts(k));
}

}  // namespace
}  // namespace sag::tls
