// SharedState against a real redis-server, started by each test on a free
// loopback port (tests/affinity/redis_test_support.h; the test fails when
// redis-server is not installed).
#include "affinity/shared_state.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "affinity/redis_client.h"
#include "tests/affinity/redis_test_support.h"

namespace sag::affinity {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::RedisServer;

config::GatewayConfig gateway_config(const std::vector<std::string>& servers) {
  config::GatewayConfig gc;
  config::BackendConfig b;
  b.name = "app";
  uint16_t port = 9001;
  for (const auto& n : servers) {
    config::ServerConfig s;
    s.name = n;
    s.address = "127.0.0.1:" + std::to_string(port++);
    s.endpoint = config::Endpoint::parse(s.address).value_or(config::Endpoint{});
    b.servers.push_back(s);
  }
  gc.backends.push_back(b);
  return gc;
}

// A replica's view: its own backends, Redis client and SharedState.
class Replica {
 public:
  Replica(const RedisServer& redis, SharedState::Options options, std::vector<std::string> servers = {"s1", "s2"})
      : config_(gateway_config(servers)), backends_(config_) {
    client_ = std::make_unique<RedisClient>(testing::redis_config(redis, options.key_prefix), nullptr);
    shared_ = std::make_unique<SharedState>(
        *client_, backends_, std::move(options),
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

  Backend& backend() { return *backends_.find("app"); }
  Server& server(const std::string& name) { return *backend().find_server(name); }
  // What the admin API does on a PUT.
  void admin_set(const std::string& name, std::optional<AdminState> state, std::optional<uint32_t> weight) {
    Server& s = server(name);
    const AdminState st = state.value_or(s.admin_state());
    const uint32_t w = weight.value_or(s.weight());
    s.apply_admin(st, w, std::chrono::steady_clock::now());
    shared_->server_changed(backend(), s, st, w);
  }
  SharedState& shared() { return *shared_; }
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
  config::GatewayConfig config_;
  BackendSet backends_;
  std::unique_ptr<RedisClient> client_;
  std::unique_ptr<SharedState> shared_;
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

class SharedStateTest : public testing::RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    prefix_ = std::string("t:") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + ":";
  }
  SharedState::Options options(std::chrono::milliseconds poll = 60s) const {
    SharedState::Options o;
    o.key_prefix = prefix_;
    o.poll_interval = poll;
    return o;
  }
  std::unique_ptr<Replica> replica(SharedState::Options o, std::vector<std::string> servers = {"s1", "s2"}) {
    auto r = std::make_unique<Replica>(server_, std::move(o), std::move(servers));
    r->start();
    return r;
  }

  std::string prefix_;
};

TEST_F(SharedStateTest, AdminChangeReachesOtherReplicaWithinOneSecond) {
  auto a = replica(options());
  auto b = replica(options());
  ASSERT_TRUE(a->shared().wait_loaded(5s));
  ASSERT_TRUE(b->shared().wait_loaded(5s));
  ASSERT_EQ(b->server("s1").admin_state(), AdminState::kReady);

  a->admin_set("s1", AdminState::kDrain, std::nullopt);
  EXPECT_TRUE(eventually([&] { return b->server("s1").admin_state() == AdminState::kDrain; }, 1s));
  a->admin_set("s2", std::nullopt, 40);
  EXPECT_TRUE(eventually([&] { return b->server("s2").weight() == 40u; }, 1s));
  // The other way round, and back to ready.
  b->admin_set("s1", AdminState::kReady, 7);
  EXPECT_TRUE(eventually(
      [&] { return a->server("s1").admin_state() == AdminState::kReady && a->server("s1").weight() == 7u; },
      1s));
  EXPECT_EQ(b->server("s1").admin_state(), AdminState::kReady);  // its own echo changed nothing
  EXPECT_EQ(b->server("s2").admin_state(), AdminState::kReady);

  auto h = cli({"HGETALL", prefix_ + "admin:app:s2"});
  ASSERT_EQ(h.type, RedisReply::Type::kArray);
  std::map<std::string, std::string> fields;
  for (size_t i = 0; i + 1 < h.elements.size(); i += 2) fields[h.elements[i].str] = h.elements[i + 1].str;
  EXPECT_EQ(fields["state"], "ready");
  EXPECT_EQ(fields["weight"], "40");
  EXPECT_EQ(fields.size(), 2u);  // nothing else is written
  EXPECT_GE(b->shared().applied(), 2u);
}

// A reply to a read sent before a PUT may be applied to the Server after
// the PUT set it and before the hook runs: the hook's values win, here, in
// Redis and on the other replica.
TEST_F(SharedStateTest, AStaleReadAppliedBeforeTheHookCannotUndoAChange) {
  auto a = replica(options());
  auto b = replica(options());
  ASSERT_TRUE(a->shared().wait_loaded(5s));
  ASSERT_TRUE(b->shared().wait_loaded(5s));
  Server& s1 = a->server("s1");
  const auto now = std::chrono::steady_clock::now();
  s1.apply_admin(AdminState::kDrain, 30u, now);   // the PUT
  s1.apply_admin(AdminState::kReady, 100u, now);  // the stale reply (what Redis had)
  a->shared().server_changed(a->backend(), s1, AdminState::kDrain, 30);  // the hook
  EXPECT_EQ(s1.admin_state(), AdminState::kDrain);  // in place when it returns
  EXPECT_EQ(s1.weight(), 30u);
  EXPECT_TRUE(eventually(
      [&] { return b->server("s1").admin_state() == AdminState::kDrain && b->server("s1").weight() == 30u; },
      1s));
  EXPECT_EQ(cli({"HGET", prefix_ + "admin:app:s1", "state"}).str, "drain");
  EXPECT_EQ(cli({"HGET", prefix_ + "admin:app:s1", "weight"}).str, "30");
  std::this_thread::sleep_for(200ms);  // A's own re-read after the announcement changes nothing
  EXPECT_EQ(s1.admin_state(), AdminState::kDrain);
  EXPECT_EQ(s1.weight(), 30u);
}

TEST_F(SharedStateTest, AdminStateLoadedAtStart) {
  {
    auto a = replica(options());
    ASSERT_TRUE(a->shared().wait_loaded(5s));
    a->admin_set("s2", AdminState::kMaint, 55);
      ASSERT_TRUE(eventually(
        [&] { return cli({"HGET", prefix_ + "admin:app:s2", "state"}).str == "maint"; }, 5s));
  }
  // A replica started afterwards has it once loaded, before any traffic.
  auto b = replica(options());
  ASSERT_TRUE(b->shared().wait_loaded(5s));
  EXPECT_EQ(b->server("s2").admin_state(), AdminState::kMaint);
  EXPECT_EQ(b->server("s2").weight(), 55u);
  EXPECT_EQ(b->server("s1").admin_state(), AdminState::kReady);
  EXPECT_EQ(b->server("s1").weight(), 100u);
}

// A change that reached Redis without an announcement (a lost message) is
// picked up by the periodic re-read.
TEST_F(SharedStateTest, MissedMessageConvergesByPolling) {
  auto b = replica(options(300ms));
  ASSERT_TRUE(b->shared().wait_loaded(5s));
  ASSERT_EQ(cli({"HSET", prefix_ + "admin:app:s1", "state", "drain", "weight", "3"}).type,
            RedisReply::Type::kInteger);
  EXPECT_TRUE(eventually(
      [&] { return b->server("s1").admin_state() == AdminState::kDrain && b->server("s1").weight() == 3u; },
      5s));
  // Garbage is ignored, field by field.
  ASSERT_EQ(cli({"HSET", prefix_ + "admin:app:s2", "state", "broken", "weight", "9"}).type,
            RedisReply::Type::kInteger);
  EXPECT_TRUE(eventually([&] { return b->server("s2").weight() == 9u; }, 5s));
  EXPECT_EQ(b->server("s2").admin_state(), AdminState::kReady);
  ASSERT_EQ(cli({"HSET", prefix_ + "admin:app:s2", "weight", "100000"}).type, RedisReply::Type::kInteger);
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(b->server("s2").weight(), 9u);
}

// Only servers of the local config are touched.
TEST_F(SharedStateTest, UnknownServersAreIgnored) {
  auto a = replica(options(), {"s1", "s2", "s3"});
  auto b = replica(options(300ms));
  ASSERT_TRUE(a->shared().wait_loaded(5s));
  ASSERT_TRUE(b->shared().wait_loaded(5s));
  a->admin_set("s3", AdminState::kMaint, 1);
  cli({"PUBLISH", prefix_ + "admin", "nosuch\ns1"});
  cli({"PUBLISH", prefix_ + "admin", "garbage"});
  a->admin_set("s1", AdminState::kDrain, std::nullopt);  // a marker that b did get messages
  EXPECT_TRUE(eventually([&] { return b->server("s1").admin_state() == AdminState::kDrain; }, 1s));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(b->shared().applied(), 1u);
  EXPECT_EQ(b->server("s2").admin_state(), AdminState::kReady);
  EXPECT_EQ(b->server("s2").weight(), 100u);
}

// Redis stalls (SIGSTOP): a change made meanwhile stays in place locally
// (the re-read after reconnecting must not undo it), is written when Redis
// answers again, and reaches the other replica.
TEST_F(SharedStateTest, ChangeDuringOutageIsWrittenBack) {
  auto a = replica(options());
  auto b = replica(options());
  ASSERT_TRUE(a->shared().wait_loaded(5s));
  ASSERT_TRUE(b->shared().wait_loaded(5s));
  a->admin_set("s1", AdminState::kMaint, std::nullopt);
  ASSERT_TRUE(eventually([&] { return b->server("s1").admin_state() == AdminState::kMaint; }, 1s));

  server_.pause();
  // The write times out (200 ms) and takes A's connection down.
  a->admin_set("s1", AdminState::kDrain, 20);
  ASSERT_TRUE(eventually([&] { return !a->client().connected(); }, 10s));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(b->server("s1").admin_state(), AdminState::kMaint);
  EXPECT_EQ(a->server("s1").admin_state(), AdminState::kDrain);
  server_.resume();

  ASSERT_TRUE(eventually([&] { return a->client().connected() && b->client().connected(); }, 10s));
  EXPECT_TRUE(eventually(
      [&] { return b->server("s1").admin_state() == AdminState::kDrain && b->server("s1").weight() == 20u; },
      5s));
  EXPECT_EQ(a->server("s1").admin_state(), AdminState::kDrain);
  EXPECT_EQ(a->server("s1").weight(), 20u);
  EXPECT_EQ(cli({"HGET", prefix_ + "admin:app:s1", "state"}).str, "drain");
}

TEST_F(SharedStateTest, TicketKeysAgreedByReplicasStartingAtOnce) {
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
    ASSERT_EQ(key.size(), SharedState::kTicketKeyBytes);
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

TEST_F(SharedStateTest, RotationKeepsThePreviousKey) {
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

TEST_F(SharedStateTest, RedisDownAtStartThenAdopted) {
  server_.kill();  // its port stays reserved for the restart below
  auto a = replica(options());
  EXPECT_FALSE(a->shared().wait_loaded(300ms));
  ASSERT_TRUE(eventually([&] { return a->sets() >= 1; }, 2s));
  const std::string local = a->current();
  EXPECT_EQ(local.size(), SharedState::kTicketKeyBytes);

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
TEST_F(SharedStateTest, TicketKeysRefilledAfterRedisLosesThem) {
  auto a = replica(options(300ms));
  ASSERT_TRUE(a->shared().wait_loaded(5s));
  ASSERT_TRUE(eventually([&] { return a->sets() >= 2; }, 2s));
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
}  // namespace sag::affinity
